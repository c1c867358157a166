"""The adapter contract shared by every target kind (see DESIGN.md, "Adapter"): the
operations, and the errors that tell the workflow whether a retry can help.

The payloads they take and return live in contracts.adapter; this module stays free of
temporalio so adapters can be used and tested alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from contracts.adapter import Capabilities, Plan, Receipt, StepCommand, Verification


class AdapterError(Exception):
    """Base of adapter failures; the subclass tells the workflow whether to retry."""


class TransientAdapterError(AdapterError):
    """The target may accept the same call later (timeout, connection refused)."""


class PermanentAdapterError(AdapterError):
    """Retrying cannot help (unknown target, value refused by policy of the device)."""


class Adapter(Protocol):
    """Operations every adapter offers; each must be safe to call again with the same key."""

    name: str

    async def plan(self, command: StepCommand) -> Plan: ...

    async def apply(self, command: StepCommand, *, key: str) -> Receipt: ...

    async def verify(self, receipt: Receipt) -> Verification: ...

    async def rollback(self, receipt: Receipt) -> Receipt: ...

    async def capabilities(self) -> Capabilities: ...


@runtime_checkable
class RenewsLease(Protocol):
    """An adapter whose applied steps also expire on the target by themselves (a dead-man's
    switch, such as nftables element timeouts), should Bulkhead die while holding them.

    When a responder extends a step's lease, the orchestrator moves that deadline too, or
    the target lets go at the old time while the console shows the step still in force.
    `expires_at` is the lease's new absolute deadline (timezone-aware), so a retried call
    lands on the same deadline. The returned receipt records it, and `verify` checks it.
    A receipt without a deadline on the target comes back unchanged.
    """

    async def renew_lease(self, receipt: Receipt, *, expires_at: datetime) -> Receipt: ...
