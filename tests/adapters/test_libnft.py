"""nftables in-process (libnftables, one thread per namespace) against real namespaces,
each read back with the `nft` binary through `ip netns exec`, as an operator would.

Needs root, nft and libnftables1 (skipped with the reason otherwise; a failure under
CI=true, where .ci/run installs them).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from netlab import TEST_PREFIX, needs_netlab, nft_at

from adapters.base import PermanentAdapterError
from adapters.network import libnft
from adapters.network.nft import Nft, NftConflictError
from adapters.network.ruleset import FAMILY, TABLE
from adapters.network.topology import EnforcementPoint

pytestmark = [
    needs_netlab,
    pytest.mark.skipif(libnft.unavailable() is not None, reason=libnft.unavailable() or ""),
]
THE_TABLE = [{"add": {"table": {"family": FAMILY, "name": TABLE}}}]


def ip_netns(*args: str) -> None:
    subprocess.run(["ip", "netns", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"{TEST_PREFIX}{uuid.uuid4().hex[:6]}-nft"
    ip_netns("add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def tables_at(netns: str) -> list[str]:
    listed = json.loads(nft_at(netns, "-j", "list", "tables"))["nftables"]
    return [item["table"]["name"] for item in listed if "table" in item]


async def test_calls_run_in_process_and_land_where_the_binary_reads(netns: str):
    nft = Nft()
    point = EnforcementPoint(id="gw", netns=netns)
    try:
        assert nft.library is not None, "the default path is libnftables"
        assert await nft.list_table(point) is None
        await nft.apply(point, THE_TABLE)
        assert tables_at(netns) == [TABLE]
        listed = await nft.list_table(point)
        assert [item["table"]["name"] for item in listed or []] == [TABLE]
    finally:
        nft.close()


async def test_a_namespace_made_again_under_its_name_is_the_one_written(netns: str):
    """Our thread would keep the old namespace alive: it must follow the name."""
    nft = Nft()
    point = EnforcementPoint(id="gw", netns=netns)
    try:
        await nft.apply(point, THE_TABLE)
        ip_netns("del", netns)
        ip_netns("add", netns)
        assert await nft.list_table(point) is None, "the new namespace has no table yet"
        await nft.apply(point, THE_TABLE)
        assert tables_at(netns) == [TABLE]
    finally:
        nft.close()


def netns_of(thread: int | None = None) -> int:
    """The inode of a thread's network namespace (None: this process's main thread)."""
    where = f"/proc/{os.getpid()}" + (f"/task/{thread}" if thread is not None else "")
    return Path(f"{where}/ns/net").stat().st_ino


async def test_a_deleted_namespace_is_let_go_of(netns: str):
    """The point's thread goes back home once its namespace is gone, rather than keeping
    the deleted namespace alive for as long as the worker runs."""
    nft = Nft()
    point = EnforcementPoint(id="gw", netns=netns)
    try:
        await nft.apply(point, THE_TABLE)
        threads = [t.native_id for t in threading.enumerate() if t.name.startswith(f"nft-{netns}")]
        assert len(threads) == 1
        assert netns_of(threads[0]) != netns_of(), "the point's thread is in its namespace"
        ip_netns("del", netns)
        with pytest.raises(PermanentAdapterError, match="does not exist"):
            await nft.list_table(point)
        assert netns_of(threads[0]) == netns_of(), "and back home once it is gone"
    finally:
        nft.close()


async def test_a_missing_namespace_says_so_and_is_not_retried():
    nft = Nft()
    point = EnforcementPoint(id="gw", netns=f"{TEST_PREFIX}{uuid.uuid4().hex[:6]}-none")
    try:
        with pytest.raises(PermanentAdapterError, match="does not exist"):
            await nft.list_table(point)
    finally:
        nft.close()


def test_the_host_thread_never_sees_a_namespace(netns: str):
    library = libnft.LibNft()
    name = f"bkprobe{uuid.uuid4().hex[:6]}"
    try:
        added = library.submit(netns, f"add table inet {name}").result(timeout=5)
        assert added.rc == 0, added.error
        in_namespace = library.submit(netns, "list tables").result(timeout=5)
        on_host = library.submit(None, "list tables").result(timeout=5)
    finally:
        library.close()
    assert name in in_namespace.output
    assert on_host.rc == 0 and name not in on_host.output


async def test_a_refused_batch_reads_as_the_binary_would(netns: str):
    """The kernel's words reach the same sorting: a second `create` is a conflict."""
    nft = Nft()
    point = EnforcementPoint(id="gw", netns=netns)
    create = [{"create": {"table": {"family": FAMILY, "name": TABLE}}}]
    try:
        await nft.apply(point, create)
        with pytest.raises(NftConflictError, match="File exists"):
            await nft.apply(point, create)
    finally:
        nft.close()
