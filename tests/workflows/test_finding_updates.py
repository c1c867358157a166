"""A SIEM's update or close of a finding replaces it in the incident (same uid) instead of
adding another; a repeated update is a duplicate; a new picture still gets a decision."""

from __future__ import annotations

from harness import make_settings, running_worker, wait_for
from temporalio.client import Client
from workflow_fakes import ScriptedEngine, finding, new_incident, scripted_activities, send

from contracts.findings import ActivityId, SeverityId


async def test_update_and_close_replace_the_finding_they_refer_to(temporal_client: Client):
    settings = make_settings(1)
    engine = ScriptedEngine([])
    params = new_incident()
    uid = "alert-42"
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params, finding(uid, severity_id=3, time=1000))
        await wait_for(temporal_client, params.incident_id, lambda v: v.decision is not None)
        await send(
            temporal_client,
            settings,
            params,
            finding(uid, severity_id=5, time=2000, activity_id=2),
        )
        # The same update again (a SIEM retry) is a duplicate, not news.
        await send(
            temporal_client,
            settings,
            params,
            finding(uid, severity_id=5, time=2000, activity_id=2),
        )
        # The update's decision is made before the close arrives (otherwise both are
        # decided together, and which severity the policy saw depends on timing).
        await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: [e.kind for e in v.audit].count("decision") == 2,
        )
        await send(temporal_client, settings, params, finding(uid, time=3000, activity_id=3))
        view = await wait_for(
            temporal_client,
            params.incident_id,
            lambda v: "finding.closed" in {e.kind for e in v.audit},
        )
    assert len(view.findings) == 1, "updates replace, they do not add"
    assert view.findings[0].activity_id is ActivityId.CLOSE
    assert view.findings_received == 3
    assert view.duplicates == 1
    kinds = [e.kind for e in view.audit]
    assert kinds.count("finding.received") == 1
    assert kinds.count("finding.updated") == 1
    # The update raised the severity: a new picture, so the policy decided again.
    assert kinds.count("decision") == 2
    assert engine.inputs[-1]["findings"][0]["severity_id"] == SeverityId.CRITICAL


async def test_update_of_an_unknown_finding_is_taken_as_new(temporal_client: Client):
    settings = make_settings(1)
    params = new_incident()
    engine = ScriptedEngine([])
    async with running_worker(temporal_client, settings, scripted_activities(settings, engine)):
        await send(temporal_client, settings, params, finding("late-1", activity_id=2))
        view = await wait_for(temporal_client, params.incident_id, lambda v: v.findings)
    assert [f.finding_info.uid for f in view.findings] == ["late-1"]
    assert "finding.received" in {e.kind for e in view.audit}
