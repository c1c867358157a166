"""Adapter `nftables`: isolate a zone or a host, or cut a conduit between two zones, at the
enforcement points (this host or a gateway's network namespace) that guard them.

Step contract (see topology.resolve): action `contain` or `deny` on target `zone`,
`ipv4_net`, `ipv6_net` or `device`; `deny` on `zones: [a, b]`; args `allow` (management
conduit ids or CIDRs whose flows are spared) and `timeout_s` (set elements expire then:
a dead-man's switch equal to the lease, should Bulkhead die while holding a zone).

Apply is one atomic batch per enforcement point whose sets are `create`d: a repeated apply
of the same `incident:step` key fails inside the kernel before adding anything, and then
finds the step already in place. Verify and rollback read the table back and act only on
the step's own sets and the rules that reference them. `renew_lease` moves the switch to
a lease's new deadline (see lease.py); verify then also checks that deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from adapters.base import AdapterError, PermanentAdapterError, TransientAdapterError
from adapters.network.lease import deadline_problem, deadline_text, seconds_until
from adapters.network.nft import Nft, NftConflictError, NftGoneError
from adapters.network.ruleset import (
    FAMILY,
    TABLE,
    Observed,
    StepRules,
    add_commands,
    build,
    difference,
    ensure_commands,
    observe,
    remove_commands,
    render,
    render_rule,
    renew_commands,
    tag_of,
)
from adapters.network.topology import (
    ACTIONS,
    EnforcementPoint,
    NetworkTopology,
    Selection,
    resolve,
)
from contracts.adapter import Capabilities, Plan, Receipt, StepCommand, Verification

T = TypeVar("T")
# A racing rollback of the same step may delete a handle between our listing and our
# delete: the batch then fails whole, and we read the table again.
REMOVE_ATTEMPTS = 3


class NftablesAdapter:
    name = "nftables"

    def __init__(self, topology: NetworkTopology, *, nft: Nft | None = None) -> None:
        self.topology = topology
        self.nft = nft or Nft()

    # --- shared -------------------------------------------------------------------------

    def _resolve(self, command: StepCommand) -> Selection:
        return resolve(self.topology, command.action, command.target, command.args)

    def validate(self, command: StepCommand) -> None:
        """The checks `plan` makes before it reads the target, and nothing else: no I/O.

        Raises PermanentAdapterError saying why this adapter would refuse the step; used
        by `bulkhead policy check` to catch such steps before a policy is merged."""
        self._resolve(command)

    def _points_of(self, receipt: Receipt) -> tuple[EnforcementPoint, ...]:
        recorded = receipt.after.get("points") or receipt.before.get("points")
        if isinstance(recorded, list) and recorded:
            return tuple(EnforcementPoint.from_record(r) for r in recorded)
        return resolve(self.topology, receipt.action, receipt.target, {}).points

    async def _observe(self, point: EnforcementPoint, tag: str) -> Observed:
        return observe(await self.nft.list_table(point), tag)

    @staticmethod
    async def _all(calls: Sequence[Awaitable[T]]) -> list[T]:
        """Every point concurrently; the first failure is raised once all have finished."""
        results = await asyncio.gather(*calls, return_exceptions=True)
        done: list[T] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            done.append(result)
        return done

    @staticmethod
    def _expected(step: StepRules, selection: Selection) -> dict[str, Any]:
        """The receipt's `after`: what verify must find at each point, and the rules."""
        at = {p.id: step.at(p.hooks) for p in selection.points}
        return {
            "present": True,
            "table": f"{FAMILY} {TABLE}",
            "tag": step.tag,
            "points": [p.as_record() for p in selection.points],
            "sets": step.set_elements(),
            "rules": {pid: len(s.rules) for pid, s in at.items()},
            "rule_text": {
                pid: [render_rule(r, step.key) for r in s.rules] for pid, s in at.items()
            },
            "timeout_s": selection.timeout_s,
        }

    @staticmethod
    def _difference(
        observed: Observed,
        after: dict[str, Any],
        point: EnforcementPoint,
        *,
        listed_between: tuple[float, float],
    ) -> str | None:
        rules = after.get("rules", {})
        sets: dict[str, list[str]] = after.get("sets", {})
        problem = difference(
            observed,
            sets,
            int(rules.get(point.id, -1)) if isinstance(rules, dict) else -1,
            timeout_s=after.get("timeout_s"),
        )
        renewed_until = after.get("expires_at")
        if problem is not None or not renewed_until:
            return problem
        # A renewed lease: the switch must fire at its deadline, not at the applied one.
        expiring = {name: sets[name] for name in observed.expiring if name in sets}
        return deadline_problem(
            observed,
            expiring,
            datetime.fromisoformat(renewed_until),
            listed_between=listed_between,
        )

    # --- the contract -------------------------------------------------------------------

    async def plan(self, command: StepCommand) -> Plan:
        selection = self._resolve(command)
        step = build(selection, command.idempotency_key)
        before: dict[str, Any] = {}
        for point in selection.points:
            try:
                before[point.id] = (await self._observe(point, step.tag)).record()
            except AdapterError as exc:
                # Plan-only mode (no root, no nft, lab down) still shows the exact rules.
                before[point.id] = {"observed": False, "detail": str(exc)}
        return Plan(
            adapter=self.name,
            summary=f"{selection.summary} at {', '.join(p.id for p in selection.points)}",
            changes=[
                f"[{p.describe()}] {line}"
                for p in selection.points
                for line in render(step.at(p.hooks))
            ],
            before={"points": before},
            after=self._expected(step, selection),
        )

    async def _add(self, point: EnforcementPoint, commands: list[dict[str, Any]]) -> bool:
        """True when the batch landed; False when some of the step's sets already exist."""
        try:
            await self.nft.apply(point, commands)
        except NftConflictError:
            return False
        return True

    async def _apply_at(self, point: EnforcementPoint, whole: StepRules) -> str:
        step = whole.at(point.hooks)
        try:
            added = await self._add(point, add_commands(step))
        except NftGoneError:
            # The first step here: the table and its chains come in the same atomic batch.
            ensure = ensure_commands(step.chains)
            added = await self._add(point, [*ensure, *add_commands(step)])
        if added:
            return "added"
        observed = await self._observe(point, step.tag)
        if difference(observed, step.set_elements(), len(step.rules)) is None:
            return "already in place"
        # Partly there (elements expired, or edited by hand): replace it in one batch.
        await self.nft.apply(point, [*remove_commands(observed), *add_commands(step)])
        return "replaced"

    async def apply(self, command: StepCommand, *, key: str) -> Receipt:
        selection = self._resolve(command)
        step = build(selection, key)
        points = selection.points
        results = await asyncio.gather(
            *(self._apply_at(p, step) for p in points), return_exceptions=True
        )
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            # All or nothing across points: a zone cut off at one gateway but not at the
            # next is neither contained nor running normally.
            landed = [p for p, r in zip(points, results, strict=True) if isinstance(r, str)]
            await asyncio.gather(
                *(self._remove_at(p, step.tag) for p in landed), return_exceptions=True
            )
            raise failure
        outcomes = [str(r) for r in results]
        detail = "; ".join(f"{p.id}: {o}" for p, o in zip(points, outcomes, strict=True))
        return Receipt(
            adapter=self.name,
            key=key,
            target=dict(command.target),
            action=command.action,
            applied=True,
            before={"present": any(o != "added" for o in outcomes)},
            after=self._expected(step, selection),
            detail=detail,
        )

    async def verify(self, receipt: Receipt) -> Verification:
        points = self._points_of(receipt)
        tag = tag_of(receipt.key)
        started = time.time()
        observed = await self._all([self._observe(p, tag) for p in points])
        listed_between = (started, time.time())
        problems = []
        for point, seen in zip(points, observed, strict=True):
            if receipt.applied:
                problem = self._difference(
                    seen, receipt.after, point, listed_between=listed_between
                )
            else:
                problem = (
                    f"{len(seen.rules)} rules and sets {sorted(seen.sets)} remain"
                    if seen.present
                    else None
                )
            if problem:
                problems.append(f"{point.describe()}: {problem}")
        record = {p.id: s.record() for p, s in zip(points, observed, strict=True)}
        if problems:
            return Verification(ok=False, observed=record, detail="; ".join(problems))
        state = "in place" if receipt.applied else "absent"
        return Verification(
            ok=True, observed=record, detail=f"step's sets and rules read back {state}"
        )

    async def _remove_at(self, point: EnforcementPoint, tag: str) -> tuple[int, int]:
        for _attempt in range(REMOVE_ATTEMPTS):
            observed = await self._observe(point, tag)
            if not observed.present:
                return 0, 0
            try:
                await self.nft.apply(point, remove_commands(observed))
            except (NftGoneError, NftConflictError):
                continue  # changed under us between listing and delete: read it again
            return len(observed.rules), len(observed.sets)
        raise TransientAdapterError(f"{point.describe()}: step {tag} kept changing")

    async def rollback(self, receipt: Receipt) -> Receipt:
        points = self._points_of(receipt)
        tag = tag_of(receipt.key)
        removed = await self._all([self._remove_at(p, tag) for p in points])
        parts = [
            f"{p.id}: removed {rules} rules and {sets} sets"
            for p, (rules, sets) in zip(points, removed, strict=True)
            if rules or sets
        ]
        return receipt.model_copy(
            update={
                "applied": False,
                "before": receipt.after,
                "after": {
                    "present": False,
                    "tag": tag,
                    "points": [p.as_record() for p in points],
                },
                "detail": "; ".join(parts) or "nothing to undo",
            }
        )

    # --- the lease on the target (adapters.base.RenewsLease) -----------------------------

    async def _renew_at(self, point: EnforcementPoint, receipt: Receipt, until: datetime) -> str:
        tag = tag_of(receipt.key)
        sets: dict[str, list[str]] = receipt.after.get("sets", {})
        held = await self._observe(point, tag)
        missing = sorted(set(sets) - set(held.sets))
        if missing:
            # Rolled back (or deleted by hand): renewing must not bring a released step back.
            raise PermanentAdapterError(
                f"{point.describe()}: step {receipt.key} is not in place (sets {missing} "
                "missing): nothing to renew"
            )
        expiring = {name: sets[name] for name in held.expiring if name in sets}
        if not expiring:
            return f"{point.id}: no expiring sets"
        lapsed = sorted(name for name in expiring if not held.sets[name])
        try:
            await self.nft.apply(
                point, renew_commands(expiring, receipt.key, seconds_until(until, time.time()))
            )
        except NftGoneError:
            raise PermanentAdapterError(
                f"{point.describe()}: step {receipt.key} was removed while renewing its lease"
            ) from None
        started = time.time()
        renewed = await self._observe(point, tag)
        problem = deadline_problem(renewed, expiring, until, listed_between=(started, time.time()))
        if problem is not None:
            # Another writer changed the sets between our batch and the listing; the
            # renewal is idempotent, so a retry converges.
            raise TransientAdapterError(f"{point.describe()}: lease not renewed: {problem}")
        count = f"{len(expiring)} set{'' if len(expiring) == 1 else 's'}"
        detail = f"{point.id}: {count} held until {deadline_text(until)}"
        if lapsed:
            detail += f" ({', '.join(lapsed)} had timed out: back in force)"
        return detail

    async def renew_lease(self, receipt: Receipt, *, expires_at: datetime) -> Receipt:
        """Move the step's dead-man's switch to `expires_at`, prove it by reading it back, and
        return the receipt recording the new deadline (`after.expires_at`, which verify then
        checks). Idempotent. A step applied without `timeout_s`, or rolled back, holds no
        deadline on the target: its receipt comes back unchanged.
        """
        if not receipt.applied or not receipt.after.get("timeout_s"):
            return receipt
        seconds_until(expires_at, time.time())  # refuse a bad deadline before touching nft
        points = self._points_of(receipt)
        outcomes = await self._all([self._renew_at(p, receipt, expires_at) for p in points])
        return receipt.model_copy(
            update={
                "after": {**receipt.after, "expires_at": deadline_text(expires_at)},
                "detail": "; ".join(outcomes),
            }
        )

    async def capabilities(self) -> Capabilities:
        points = self.topology.points
        if not points:
            return Capabilities(
                adapter=self.name,
                usable=False,
                actions=list(ACTIONS),
                detail="no enforcement points: add network.enforcement_points to the inventory",
            )
        problems = await asyncio.gather(*(self.nft.probe(p) for p in points))
        lines = [
            problem or f"{p.describe()}: nft usable"
            for p, problem in zip(points, problems, strict=True)
        ]
        return Capabilities(
            adapter=self.name,
            usable=all(problem is None for problem in problems),
            actions=list(ACTIONS),
            detail="; ".join(lines),
        )
