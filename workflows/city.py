"""CityWorkflow: the one city-wide record: the automation kill switch and the ledger of
automatic containments in force (the policy's blast-radius budget reads its size).

A singleton workflow keeps both durable and consistent across API and worker processes.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.city import (
        MEMO_ACTIVE,
        MEMO_PAUSED,
        AutomationChange,
        CityView,
        ContainmentEvent,
    )
    from contracts.names import STATE_QUERY, CitySignal, CityUpdate

# Signals pile up in history; start a fresh run well before the history gets heavy.
MAX_EVENTS_PER_RUN = 5_000


@workflow.defn(name="CityWorkflow")
class CityWorkflow:
    @workflow.init
    def __init__(self, carried: CityView | None = None) -> None:
        self._view = carried or CityView()
        self._published: tuple[bool, int] | None = None

    @workflow.run
    async def run(self, carried: CityView | None = None) -> None:
        del carried
        self._publish()
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() > MAX_EVENTS_PER_RUN
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        # The memo goes along explicitly: deciders must never see the record blank.
        workflow.continue_as_new(
            self._view,
            memo={MEMO_PAUSED: self._view.paused, MEMO_ACTIVE: len(self._view.active)},
        )

    @workflow.query(name=STATE_QUERY)
    def state(self) -> CityView:
        return self._view

    @workflow.update(name=CityUpdate.PAUSE)
    def pause(self, change: AutomationChange) -> CityView:
        return self._set(paused=True, change=change)

    @workflow.update(name=CityUpdate.RESUME)
    def resume(self, change: AutomationChange) -> CityView:
        return self._set(paused=False, change=change)

    @workflow.signal(name=CitySignal.CONTAINMENT_STARTED)
    def containment_started(self, event: ContainmentEvent) -> None:
        self._view.active[event.key] = event.at
        self._publish()

    @workflow.signal(name=CitySignal.CONTAINMENT_ENDED)
    def containment_ended(self, event: ContainmentEvent) -> None:
        self._view.active.pop(event.key, None)
        self._publish()

    def _publish(self) -> None:
        """Mirror what every decision needs into the memo.

        Deciders read it with one DescribeWorkflow call the server answers alone, instead
        of a query that would wait for a worker (~45 ms on the critical path).
        """
        summary = (self._view.paused, len(self._view.active))
        if summary != self._published:
            workflow.upsert_memo({MEMO_PAUSED: summary[0], MEMO_ACTIVE: summary[1]})
            self._published = summary

    def _set(self, *, paused: bool, change: AutomationChange) -> CityView:
        self._view = self._view.model_copy(
            update={
                "paused": paused,
                "changed_by": change.principal.name,
                "changed_at": workflow.now().isoformat(),
                "reason": change.reason,
            }
        )
        self._publish()
        return self._view
