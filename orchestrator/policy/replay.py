"""Replay recorded findings under two policy versions and show what would change.

The baseline is a directory, or a git ref whose policy directory is exported with
`git archive` into a temporary directory (read-only for the repository). Each version
enriches the findings with its own inventory, as it would have in production.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.decision import Decision
from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.diff import Change, diff_decisions
from orchestrator.policy.dryrun import DryRunError, policy_input_from
from orchestrator.policy.embedded import EmbeddedEngine

GIT_TIMEOUT_S = 30


class ReplayError(Exception):
    """The findings or the baseline cannot be read."""


@dataclass(frozen=True)
class Record:
    label: str
    document: Any


@dataclass(frozen=True)
class Replayed:
    record: Record
    before: Decision
    after: Decision
    changes: list[Change]


def read_records(path: Path) -> list[Record]:
    """One JSON document per line: a finding, or `{"incident_id", "findings": [...]}`."""
    records: list[Record] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReplayError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        label = f"line {number}"
        if isinstance(document, dict) and document.get("incident_id"):
            label = str(document["incident_id"])
        records.append(Record(label, document))
    if not records:
        raise ReplayError(f"{path}: no findings")
    return records


def _git(cwd: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell; the ref is a git argument
            ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=cwd,
            capture_output=True,
            check=True,
            timeout=GIT_TIMEOUT_S,
        )
    except FileNotFoundError as exc:
        raise ReplayError("git is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise ReplayError(f"git {' '.join(args)}: {exc.stderr.decode().strip()}") from exc
    return done.stdout


@contextmanager
def baseline_dir(baseline: str, policy_dir: Path) -> Iterator[Path]:
    """`baseline` as a directory: itself, or the policy directory as of a git ref."""
    if Path(baseline).is_dir():
        yield Path(baseline)
        return
    source = policy_dir.resolve()
    top = Path(_git(source, "rev-parse", "--show-toplevel").decode().strip())
    prefix = source.relative_to(top).as_posix()
    archive = _git(top, "archive", "--format=tar", baseline, "--", prefix)
    with tempfile.TemporaryDirectory(prefix="bulkhead-baseline-") as temp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(temp, filter="data")  # refuses absolute paths and links out
        yield Path(temp) / prefix


def _decide(engine: EmbeddedEngine, record: Record) -> Decision:
    try:
        policy_input = policy_input_from(
            record.document,
            engine.inventory(),
            incident_id=f"replay-{record.label.replace(' ', '-')}",
        )
    except DryRunError as exc:
        raise ReplayError(f"{record.label}: {exc}") from exc
    return engine.decide(policy_input)


def replay(records: list[Record], before: PolicyBundle, after: PolicyBundle) -> list[Replayed]:
    old, new = EmbeddedEngine.from_bundle(before), EmbeddedEngine.from_bundle(after)
    results: list[Replayed] = []
    for record in records:
        was, now = _decide(old, record), _decide(new, record)
        changes = diff_decisions(was.verdict, was.steps, now.verdict, now.steps)
        results.append(Replayed(record, was, now, changes))
    return results


def render(results: list[Replayed], *, before: str, after: str) -> str:
    """A table a person reads: one row per decision, one line per change."""
    changed = [r for r in results if r.changes]
    lines = [
        f"Replayed {len(results)} recorded incident(s): {before} → {after}",
        "",
        f"{'#':>3}  {'INCIDENT':<28} {'VERDICT':<22} CHANGES",
    ]
    for number, result in enumerate(results, start=1):
        was, now = result.before.verdict.value, result.after.verdict.value
        verdict = was if was == now else f"{was} → {now}"
        details = [c.describe() for c in result.changes if c.kind != "verdict"]
        if not result.changes:
            details = ["(unchanged)"]
        elif not details:
            details = ["(verdict only)"]
        lines.append(f"{number:>3}  {result.record.label[:28]:<28} {verdict:<22} {details[0]}")
        lines += [f"{'':>3}  {'':<28} {'':<22} {detail}" for detail in details[1:]]
    lines += ["", f"{len(changed)} of {len(results)} decision(s) changed."]
    return "\n".join(lines)
