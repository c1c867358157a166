"""A private city network per test (namespaces, veth, addresses in 198.18.0.0/15 only) and
the reason to skip when this machine cannot build one. Shared by the nftables, lab and
end-to-end network tests; each test gets its own namespace prefix, so they never meet.
"""

from __future__ import annotations

import fcntl
import functools
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from adapters.network.nft import Nft
from adapters.network.nftables import NftablesAdapter
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.lab.network import NETNS_DIR, CityNetwork, unavailable
from orchestrator.wiring.inventory import Inventory

INVENTORY = Inventory.load(DEFAULT_POLICY_DIR)
TEST_PREFIX = "bt"  # test labs are bt<6 hex>-...; `bulkhead up` uses bh-


@functools.cache
def skip_reason() -> str | None:
    reason = unavailable()
    if reason is not None:
        return reason
    if shutil.which("nft") is None:
        return "needs nft (apt-get install nftables; .ci/run installs it)"
    probe = f"{TEST_PREFIX}probe{uuid.uuid4().hex[:4]}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        return f"cannot create network namespaces here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False)
    sweep_stale()
    return None


def sweep_stale() -> None:
    """Namespaces of test runs that were killed outright (their lock is no longer held)."""
    for lock in Path("/run").glob(f"bulkhead-lab-{TEST_PREFIX}*lock"):
        prefix = lock.name.removeprefix("bulkhead-lab-").removesuffix("lock")
        with lock.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run (another pytest process) owns it
            for netns in NETNS_DIR.glob(f"{prefix}*") if NETNS_DIR.is_dir() else []:
                subprocess.run(["ip", "netns", "del", netns.name], check=False)
            lock.unlink(missing_ok=True)


needs_netlab = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def new_prefix() -> str:
    return f"{TEST_PREFIX}{uuid.uuid4().hex[:6]}-"


@asynccontextmanager
async def city_network() -> AsyncIterator[CityNetwork]:
    """The inventory's city in namespaces; removed on exit, also when the test failed."""
    network = CityNetwork.from_inventory(INVENTORY, prefix=new_prefix())
    async with network:
        yield network


def adapter_for(network: CityNetwork, *, timeout_s: float = 5.0) -> NftablesAdapter:
    """The adapter as wiring builds it, enforcing at this lab's gateway."""
    topology = INVENTORY.network_topology(lab_gateway_netns=network.gateway)
    return NftablesAdapter(topology, nft=Nft(timeout_s=timeout_s))


def nft_at(netns: str, *args: str, stdin: str | None = None) -> str:
    """A bare `nft` call in a namespace, as an operator (or another tool) would make it."""
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout
