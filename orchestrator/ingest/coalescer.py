"""Findings for one incident that arrive together travel to Temporal in one call.

A storm posts many findings about few entities at once. Each finding needs Temporal to
accept it before its 202, and a signal-with-start per finding also costs the incident's
workflow a task per finding. So there is at most one call in flight per incident, and
whatever arrives for that incident meanwhile waits and goes out together in the next
call, in arrival order: with nothing in flight a finding leaves at once (no added
latency when it is quiet), and under load calls grow with the load. Every waiting
request is answered only after the call that carried its findings returned; if that call
fails, each of them gets the failure (a 503 the sender may retry: the workflow drops a
finding it has seen).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from contracts.findings import FindingEnvelope
from contracts.incident import IncidentParams

# Findings per call: Temporal's payload limit (2 MB by default) bounds a signal, and
# compacted findings are at most a few KB each.
MAX_BATCH = 64

Send = Callable[[IncidentParams, list[FindingEnvelope]], Awaitable[object]]


@dataclass
class _Waiting:
    envelopes: Sequence[FindingEnvelope]
    answer: asyncio.Future[None]


@dataclass
class _Incident:
    params: IncidentParams
    waiting: list[_Waiting] = field(default_factory=list)


class Coalescer:
    def __init__(self, send: Send, *, max_batch: int = MAX_BATCH) -> None:
        self._send = send
        self._max_batch = max_batch
        self._incidents: dict[str, _Incident] = {}
        self._drains: set[asyncio.Task[None]] = set()
        # Told the size of every call that Temporal accepted (the API's metrics).
        self.observe: Callable[[int], None] = _ignore

    @property
    def in_flight(self) -> int:
        """Incidents with a call in flight or findings waiting for one."""
        return len(self._incidents)

    async def deliver(self, params: IncidentParams, envelopes: Sequence[FindingEnvelope]) -> None:
        """Returns once Temporal accepted every one of `envelopes` (for one incident, in
        order); raises what a call that carried them raised."""
        incident = self._incidents.get(params.incident_id)
        if incident is None:
            incident = self._incidents[params.incident_id] = _Incident(params)
            drain = asyncio.create_task(self._drain(params.incident_id, incident))
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        loop = asyncio.get_running_loop()
        answers: list[asyncio.Future[None]] = []
        for start in range(0, len(envelopes), self._max_batch):
            answer: asyncio.Future[None] = loop.create_future()
            # Retrieved even when the sender hung up, so no "never retrieved" warning.
            answer.add_done_callback(_retrieved)
            incident.waiting.append(_Waiting(envelopes[start : start + self._max_batch], answer))
            answers.append(answer)
        # Shielded: a sender that hangs up must not cancel a call that carries others'.
        await asyncio.shield(asyncio.gather(*answers))

    async def _drain(self, incident_id: str, incident: _Incident) -> None:
        try:
            while incident.waiting:
                batch = self._next_batch(incident.waiting)
                envelopes = [e for waiting in batch for e in waiting.envelopes]
                try:
                    await self._send(incident.params, envelopes)
                except Exception as exc:  # noqa: BLE001 - each waiting sender gets it
                    _answer(batch, exc)
                except BaseException:
                    _cancel(batch)
                    raise
                else:
                    _answer(batch, None)
                    self.observe(len(envelopes))
        finally:
            del self._incidents[incident_id]
            # Only if the drain itself was cancelled (shutdown) can senders still wait.
            _cancel(incident.waiting)

    def _next_batch(self, waiting: list[_Waiting]) -> list[_Waiting]:
        """Whole requests (deliver splits larger ones), oldest first, up to max_batch
        findings."""
        taken, count = 0, 0
        for item in waiting:
            if taken and count + len(item.envelopes) > self._max_batch:
                break
            taken += 1
            count += len(item.envelopes)
        batch = waiting[:taken]
        del waiting[:taken]
        return batch


def _answer(batch: Sequence[_Waiting], error: BaseException | None) -> None:
    for item in batch:
        if item.answer.done():
            continue
        if error is None:
            item.answer.set_result(None)
        else:
            item.answer.set_exception(error)


def _cancel(batch: Sequence[_Waiting]) -> None:
    for item in batch:
        item.answer.cancel()


def _retrieved(answer: asyncio.Future[None]) -> None:
    if not answer.cancelled():
        answer.exception()


def _ignore(size: int) -> None:
    del size
