"""A bench's stdout is its one JSON object: the dev server it starts prints its banner
("Temporal CLI …, Temporal Server: localhost:…") on the process's stdout, so bench/common.py
gives the server stderr instead."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import asyncio, os, sys
sys.path.insert(0, "bench")
from common import dev_server, emit

async def main():
    env = await dev_server()
    try:
        await asyncio.sleep(1)  # anything the server prints late lands in this window
        emit({"bench": "stdout-check"})
    finally:
        await env.shutdown()

asyncio.run(main())
sys.stdout.flush()
# Out without finalizing: temporalio's runtime threads can still be releasing the GIL
# while the interpreter shuts down, which aborts the process now and then (SIGABRT,
# "PyGILState_Release"): noise beside what this test checks.
os._exit(0)
"""


def test_a_bench_with_a_dev_server_prints_only_its_json() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"bench": "stdout-check"}
    assert "Temporal Server" in done.stderr, "the banner moved to stderr, not away"
