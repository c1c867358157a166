"""A step's lease as the firewall holds it: the `timeout` of its set elements, the dead-man's
switch that reopens a zone should Bulkhead die while holding it.

When a responder extends a lease, that deadline must move too, or the target lets go at
the old time while the console still shows the step in force. The new deadline is an
absolute time (the lease's own expiry), never a duration: a retried renewal lands on the
same deadline however late it runs, which makes renewing idempotent.

Pure (no I/O): the adapter lists the table and runs the batch; this decides what the
timeout is and whether what the kernel lists back is that deadline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from ipaddress import ip_network

from adapters.base import PermanentAdapterError
from adapters.network.ruleset import Observed
from adapters.network.topology import collapse

# nft lists whole seconds left (rounded down) and a timeout starts when the kernel commits
# the batch, a moment after we computed it: a read-back this close to the deadline agrees.
DEADLINE_TOLERANCE_S = 5


def deadline_text(deadline: datetime) -> str:
    """The deadline as receipts and messages show it: ISO 8601 in UTC."""
    return deadline.astimezone(UTC).isoformat()


def seconds_until(deadline: datetime, now: float) -> int:
    """The element timeout that ends at `deadline` (epoch seconds `now` is the present).

    Rounded up, because nft takes whole seconds and the target must not let go before the
    lease does: the workflow's own timer rolls the step back at the deadline.
    """
    if deadline.tzinfo is None or deadline.utcoffset() is None:
        raise PermanentAdapterError(
            f"lease deadline {deadline.isoformat()} has no time zone: say which (UTC)"
        )
    left = deadline.timestamp() - now
    if left <= 0:
        raise PermanentAdapterError(
            f"lease deadline {deadline_text(deadline)} has already passed: nothing to renew"
        )
    return math.ceil(left)


def deadline_problem(
    observed: Observed,
    expiring: Mapping[str, Sequence[str]],
    deadline: datetime,
    *,
    listed_between: tuple[float, float],
) -> str | None:
    """Why the listed sets do not hold the step's elements until `deadline` (None: they do).

    `listed_between` is the epoch time just before and just after the listing was taken,
    so the seconds left that nft shows are judged against the moment they were read.
    """
    first, last = listed_between
    earliest = deadline.timestamp() - last - DEADLINE_TOLERANCE_S
    latest = deadline.timestamp() - first + DEADLINE_TOLERANCE_S
    problems = []
    for name, elements in expiring.items():
        if name not in observed.sets:
            problems.append(f"set {name} missing")
            continue
        want = [str(n) for n in collapse(ip_network(e) for e in elements)]
        have = [str(n) for n in observed.sets[name]]
        if have != want:
            problems.append(f"set {name} holds {have or 'nothing'}, expected {want}")
            continue
        off = sorted(
            {
                "never" if left is None else f"{left} s"
                for left in observed.expiring.get(name, (None,))
                if left is None or not earliest <= left <= latest
            }
        )
        if off:
            problems.append(
                f"set {name}: elements expire in {', '.join(off)}, the lease in "
                f"{round(deadline.timestamp() - last)} s"
            )
    return "; ".join(problems) or None
