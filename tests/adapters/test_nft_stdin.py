"""The batch nft reads with `-f -` reaches it under uvloop too: `bulkhead worker` and
`bulkhead up` run on uvloop, which gives a child a socket for the event loop's PIPE, and
nft opens /dev/stdin, which a socket refuses (ENXIO). Every network step failed there.

The stand-in nft is a real process that reads its input the way nft does (it opens
/dev/stdin) and prints what it read back; no root needed.
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
import uvloop

from adapters.network.nft import Nft
from adapters.network.topology import EnforcementPoint

HERE = EnforcementPoint("local-fw", None, frozenset({"traffic"}))


def reading_nft(tmp_path: Path) -> str:
    path = tmp_path / "nft"
    # Opens /dev/stdin by name, as nft's `-f -` does; copies it to a file the test reads.
    path.write_text(f'#!/bin/sh\ncat /dev/stdin > {tmp_path}/read || exit 3\necho "{{}}"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize("size", [10, 300_000])
def test_a_batch_reaches_nft_through_stdin_under_uvloop(tmp_path, size):
    """Small, and larger than a pipe's buffer (the writer must not block the reader)."""
    nft = Nft(binary=reading_nft(tmp_path), timeout_s=20)
    elements = [f"198.18.{i // 250 % 250}.{i % 250}" for i in range(size // 16)]
    commands = [{"add": {"element": {"elem": elements}}}]
    uvloop.run(nft.apply(HERE, commands))
    read = json.loads((tmp_path / "read").read_text())
    assert read["nftables"][-1] == commands[-1]


async def test_a_batch_reaches_nft_under_asyncio(tmp_path):
    nft = Nft(binary=reading_nft(tmp_path))
    await nft.apply(HERE, [{"add": {"element": {"elem": ["198.18.0.1"]}}}])
    assert "198.18.0.1" in (tmp_path / "read").read_text()


def test_nft_that_exits_without_reading_fails_with_its_own_words(tmp_path):
    path = tmp_path / "nft"
    path.write_text("#!/bin/sh\necho 'Error: Could not process rule: No such file' >&2\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    nft = Nft(binary=str(path))
    big = [{"add": {"element": {"elem": ["198.18.0.1"] * 50_000}}}]
    with pytest.raises(Exception, match="No such file"):
        uvloop.run(asyncio.wait_for(nft.apply(HERE, big), 20))
