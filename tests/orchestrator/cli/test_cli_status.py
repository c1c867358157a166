"""`bulkhead status` against the canned API: what a duty officer reads, in 100 columns.

The real API's answer is checked in tests/test_e2e_city.py; here the picture is chosen,
so countdowns, overdue approvals, long names and markup in names can be pinned down.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from cli_canned import CITY, CannedApi, against, run

from orchestrator.cli import client

NOW = datetime(2026, 12, 7, 0, 18, tzinfo=UTC)


def picture(**changes: Any) -> dict[str, Any]:
    shown: dict[str, Any] = copy.deepcopy(CITY)
    shown["generated_at"] = NOW.isoformat()
    shown.update(changes)
    return shown


def test_status_prints_automation_budget_containment_and_approvals(
    api: CannedApi, tmp_path, capsys
):
    shown = picture()
    traffic = shown["zones"][1]
    traffic["contained"][0]["lease_expires_at"] = (NOW + timedelta(minutes=41)).isoformat()
    shown["approvals"]["waiting"].append(
        {
            "incident_id": "inc-scada-e01",
            "step_id": "fallback:scada-e01",
            "zone": "energy",
            "target": "scada-e01",
            "approval_deadline": (NOW - timedelta(minutes=5)).isoformat(),
            "overdue": True,
            "overdue_since": (NOW - timedelta(minutes=5)).isoformat(),
        }
    )
    shown["approvals"]["overdue"] = 1
    api.answer("GET", "/v1/city", shown)
    code, out, err = run(capsys, *against(api, tmp_path, "status"))
    assert code == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[0] == "Lab City, right now: 2026-12-07 00:18 UTC"
    assert lines[1].startswith(" AUTOMATION PAUSED  by dora at 00:10 UTC: drill: every step")
    assert "Blast-radius budget: 1 of 10 automatic containments" in lines
    assert "Approvals: 1 pending, 1 overdue" in lines
    held = next(line for line in lines if "fallback:tsc-0001" in line)
    assert "traffic" in held and "lease ends in 41 min, 00:59 UTC" in held
    late = next(line for line in lines if "fallback:scada-e01" in line)
    assert "OVERDUE since 00:13 UTC" in late
    due = next(line for line in lines if "fallback:rtu-e01" in line)
    assert "due in 30 min, 00:48 UTC" in due
    assert any("inc-tsc-0009" in line and "released" in line for line in lines)


def test_status_folds_long_names_into_100_columns_and_prints_markup_as_text(
    api: CannedApi, tmp_path, capsys
):
    shown = picture()
    name = "[bold red]zone[/]-" + "x" * 150
    shown["zones"][1]["id"] = name
    shown["zones"][1]["contained"][0]["step_id"] = "fallback:" + "y" * 120
    api.answer("GET", "/v1/city", shown)
    code, out, _ = run(capsys, *against(api, tmp_path, "status"))
    assert code == 0
    assert max(map(len, out.splitlines())) <= 100
    assert "│[bold " in out and "│red]zone[/]-x" in out  # as written (folded), not as markup
    # The step id is folded over lines, never cut: all 120 of its y's are there.
    assert sum(len(run) for run in re.findall(r"y{2,}", out)) == 120


def test_an_unread_city_record_says_so_instead_of_running(api: CannedApi, tmp_path, capsys):
    shown = picture(
        automation={"paused": None, "changed_by": None, "changed_at": None, "reason": None},
        budget={"used": None, "max": 10},
        unavailable=["city record (automation, budget): deadline exceeded"],
    )
    api.answer("GET", "/v1/city", shown)
    code, out, _ = run(capsys, *against(api, tmp_path, "status"))
    assert code == 0
    assert "Automation: UNKNOWN (the city record could not be read)" in out
    assert "Blast-radius budget: ? of 10 automatic containments" in out
    assert "not shown: city record (automation, budget): deadline exceeded" in out


def test_status_json_is_the_apis_answer(api: CannedApi, tmp_path, capsys):
    code, out, _ = run(capsys, *against(api, tmp_path, "status", "--json"))
    assert code == 0
    assert json.loads(out) == CITY


def test_an_answer_without_a_picture_is_an_api_failure(api: CannedApi, tmp_path, capsys):
    api.answer("GET", "/v1/city", {"incidents": []})
    code, _, err = run(capsys, *against(api, tmp_path, "status"))
    assert code == client.EXIT_API_FAILED
    assert err == [f"error: {api.url} answered without a city picture"]
