"""The coalescer alone: one call in flight per incident, what waits goes together."""

from __future__ import annotations

import asyncio

import pytest
from harness import example_finding

from contracts.findings import Finding, FindingEnvelope
from contracts.incident import IncidentParams
from orchestrator.ingest.coalescer import Coalescer

A = IncidentParams(incident_id="inc-a", entity="a")
B = IncidentParams(incident_id="inc-b", entity="b")
FINDING = Finding.model_validate(example_finding())


def envelopes(*ids: str) -> list[FindingEnvelope]:
    return [
        FindingEnvelope(finding=FINDING, source="generic", webhook_id=i, received_at_ms=0)
        for i in ids
    ]


class Temporal:
    """A send that records each call and holds it until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.gate = asyncio.Event()
        self.fail_next: Exception | None = None

    async def send(self, params: IncidentParams, batch: list[FindingEnvelope]) -> None:
        self.calls.append((params.incident_id, [e.webhook_id or "" for e in batch]))
        await self.gate.wait()
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_what_arrives_during_a_call_goes_together_in_the_next_in_order():
    temporal = Temporal()
    coalescer = Coalescer(temporal.send)
    sizes: list[int] = []
    coalescer.observe = sizes.append
    first = asyncio.create_task(coalescer.deliver(A, envelopes("1")))
    await settle()
    waiting = [asyncio.create_task(coalescer.deliver(A, envelopes(str(i)))) for i in (2, 3, 4)]
    other = asyncio.create_task(coalescer.deliver(B, envelopes("b1")))
    await settle()
    # Incident A has one call in flight; B's goes out at once, beside it.
    assert temporal.calls == [("inc-a", ["1"]), ("inc-b", ["b1"])]
    assert not any(t.done() for t in [first, *waiting, other])
    temporal.gate.set()
    await asyncio.gather(first, *waiting, other)
    assert temporal.calls[2:] == [("inc-a", ["2", "3", "4"])]
    assert sorted(sizes) == [1, 1, 3]
    assert coalescer.in_flight == 0


async def test_a_failed_call_fails_each_sender_it_carried_and_the_next_call_still_goes():
    temporal = Temporal()
    coalescer = Coalescer(temporal.send)
    first = asyncio.create_task(coalescer.deliver(A, envelopes("1")))
    await settle()
    carried = [asyncio.create_task(coalescer.deliver(A, envelopes(str(i)))) for i in (2, 3)]
    await settle()
    temporal.fail_next = RuntimeError("Temporal said no")
    temporal.gate.set()
    with pytest.raises(RuntimeError, match="Temporal said no"):
        await first
    for task in carried:  # they went in the next call, which succeeded
        await task
    temporal.gate.clear()
    temporal.fail_next = RuntimeError("down")
    late = [asyncio.create_task(coalescer.deliver(A, envelopes(str(i)))) for i in (5, 6)]
    await settle()
    temporal.gate.set()
    for task in late:
        with pytest.raises(RuntimeError, match="down"):
            await task
    assert [ids for _, ids in temporal.calls] == [["1"], ["2", "3"], ["5", "6"]]


async def test_a_request_larger_than_a_batch_is_split_in_order_and_answered_once_all_landed():
    temporal = Temporal()
    temporal.gate.set()
    coalescer = Coalescer(temporal.send, max_batch=2)
    await coalescer.deliver(A, envelopes("1", "2", "3", "4", "5"))
    assert [ids for _, ids in temporal.calls] == [["1", "2"], ["3", "4"], ["5"]]


async def test_a_sender_that_hangs_up_does_not_cancel_the_call_carrying_others():
    temporal = Temporal()
    coalescer = Coalescer(temporal.send)
    first = asyncio.create_task(coalescer.deliver(A, envelopes("1")))
    await settle()
    leaving = asyncio.create_task(coalescer.deliver(A, envelopes("2")))
    staying = asyncio.create_task(coalescer.deliver(A, envelopes("3")))
    await settle()
    leaving.cancel()
    temporal.gate.set()
    await asyncio.gather(first, staying)
    # The finding of the sender that left still went (its redelivery is deduplicated).
    assert [ids for _, ids in temporal.calls] == [["1"], ["2", "3"]]
