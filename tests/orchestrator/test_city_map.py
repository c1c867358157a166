"""The city map and picture, offline: what the SVG says of each zone, that hostile names
stay text, that any inventory the policy data allows renders (none, twenty, long names),
and the picture's rules (worst state wins, overdue approvals, the zone a step counts in).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.city import CityView
from contracts.incident import IncidentView, ServiceHealth
from orchestrator.city import draw
from orchestrator.city.assemble import Reads, picture
from orchestrator.city.model import CityPicture
from orchestrator.config import DEFAULT_POLICY_DIR

NS = {"svg": "http://www.w3.org/2000/svg"}
NOW = datetime(2026, 12, 7, 0, 18, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script> \"q\" & 'a'"


def lab_inventory() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEFAULT_POLICY_DIR / "data" / "inventory.json").read_text())
    return data


def parse(svg_text: str) -> ET.Element:
    return ET.fromstring(svg_text)  # noqa: S314 - our own output, parsed to check it


def zone_group(root: ET.Element, zone: str) -> ET.Element:
    found = [g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("data-zone") == zone]
    assert len(found) == 1, f"zone {zone!r}: {len(found)} groups"
    return found[0]


def texts(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in element.iter(f"{{{NS['svg']}}}text")]


def step(step_id: str, target: dict[str, Any], state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "adapter": "modbus",
        "action": "set",
        "target": target,
        "state": state,
        **extra,
    }


def incident(incident_id: str, *steps: dict[str, Any]) -> IncidentView:
    return IncidentView.model_validate(
        {
            "incident_id": incident_id,
            "status": "contained",
            "entity": incident_id,
            "findings": [],
            "steps": list(steps),
        }
    )


def row(view: IncidentView, zones: list[str]) -> dict[str, Any]:
    return {
        "incident_id": view.incident_id,
        "status": view.status.value,
        "zones": zones,
        "steps": {s.id: s.state.value for s in view.steps},
    }


def lab_picture(**reads: Any) -> CityPicture:
    reads.setdefault("city", CityView())
    reads.setdefault("rows", [])
    return picture(Reads(inventory=lab_inventory(), now=NOW, budget_max=10, **reads))


def test_the_map_marks_a_zone_awaiting_approval_in_words_and_colour():
    lease = (NOW + timedelta(minutes=41)).isoformat()
    held = incident(
        "inc-tsc-0001",
        step("fallback:tsc-0001", {"asset": "tsc-0001"}, "verified", lease_expires_at=lease),
    )
    waiting = incident(
        "inc-rtu-e01", step("fallback:rtu-e01", {"asset": "rtu-e01"}, "awaiting_approval")
    )
    city = CityView(active={"inc-tsc-0001:fallback:tsc-0001": NOW.isoformat()})
    shown = lab_picture(
        city=city,
        rows=[row(held, ["traffic"]), row(waiting, ["energy"])],
        details={"inc-tsc-0001": held, "inc-rtu-e01": waiting},
    )
    root = parse(draw.render(shown))
    energy = zone_group(root, "energy")
    assert energy.get("data-state") == "awaiting_approval"
    assert any("AWAITING APPROVAL (1)" in t for t in texts(energy))
    fill = energy.find("svg:rect", NS)
    assert fill is not None and fill.get("fill") == draw.COLOURS["awaiting_approval"][0]
    traffic = zone_group(root, "traffic")
    assert traffic.get("data-state") == "contained"
    lines = texts(traffic)
    held = lines.index("fallback:tsc-0001 (tsc-0001)")
    assert lines[held + 1].strip() == "lease ends 00:59 UTC"
    assert zone_group(root, "transit").get("data-state") == "normal"
    assert "1 of 10 automatic containments" in " ".join(texts(root))
    assert root.get("role") == "img"
    assert root.find("svg:title", NS) is not None and root.find("svg:desc", NS) is not None


def test_a_paused_city_has_a_banner_naming_who_and_why():
    city = CityView(paused=True, changed_by="dora", changed_at=NOW.isoformat(), reason="drill")
    root = parse(draw.render(lab_picture(city=city)))
    banner = next(g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("id") == "banner")
    assert "AUTOMATION PAUSED by dora at 2026-12-07 00:18 UTC: drill" in texts(banner)[0]
    running = parse(draw.render(lab_picture()))
    assert not [g for g in running.iter(f"{{{NS['svg']}}}g") if g.get("id") == "banner"]


def test_hostile_names_stay_text_and_the_map_stays_xml():
    inventory = {
        "city": HOSTILE,
        "zones": {
            HOSTILE: {
                "description": HOSTILE,
                "cidrs": ["10.0.0.0/8"],
                "essential_services": [HOSTILE],
            }
        },
        "network": {
            "enforcement_points": {HOSTILE: {"description": HOSTILE, "zones": [HOSTILE]}},
            "conduits": {HOSTILE + "\x01": {"description": HOSTILE, "cidrs": ["10.1.2.3/32"]}},
        },
    }
    waiting = incident(
        "inc-<x>", step(HOSTILE, {"asset": HOSTILE, "zone": HOSTILE}, "awaiting_approval")
    )
    city = CityView(paused=True, changed_by=HOSTILE, reason=HOSTILE)
    shown = picture(
        Reads(
            inventory=inventory,
            now=NOW,
            city=city,
            rows=[row(waiting, [])],
            details={"inc-<x>": waiting},
        )
    )
    text = draw.render(shown)
    root = parse(text)
    assert "<script" not in text  # escaped everywhere: in text, titles and attributes
    assert not list(root.iter("script")) and not list(root.iter(f"{{{NS['svg']}}}script"))
    assert zone_group(root, HOSTILE).get("data-state") == "awaiting_approval"
    assert re.search(r"<[a-z]+ on\w+=", text) is None  # no event-handler attribute anywhere
    assert "href" not in text  # no external reference at all
    assert any(HOSTILE[:20] in t for t in texts(root))  # shown as text, escaped


def test_no_zones_and_twenty_zones_with_long_names_render():
    empty = picture(Reads(inventory={}, now=NOW))
    root = parse(draw.render(empty))
    assert "No zones." in "".join(root.itertext())
    assert "No zones in the inventory" in texts(root)
    assert "? of ? automatic containments" in " ".join(texts(root))
    long = "zone-" + "x" * 200
    many = {
        "zones": {
            f"{long}-{n}": {"description": "d" * 500, "cidrs": [f"10.{n}.0.0/16"]}
            for n in range(20)
        },
        "network": {"enforcement_points": {"gw": {"zones": [f"{long}-{n}" for n in range(20)]}}},
    }
    root = parse(draw.render(picture(Reads(inventory=many, now=NOW, city=CityView(), rows=[]))))
    groups = [g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("data-zone")]
    assert len(groups) == 20
    for card in groups:  # every line is cut to stay inside its zone's card
        box = card.find("svg:rect", NS)
        assert box is not None
        right = float(box.get("x") or 0) + float(box.get("width") or 0)
        lines = list(card.iter(f"{{{NS['svg']}}}text"))
        assert all("".join(t.itertext()).endswith("…") for t in lines[:2])  # name, description
        for text in lines:
            shown = "".join(text.itertext())
            size = float(text.get("font-size") or 12)
            assert float(text.get("x") or 0) + len(shown) * size * 0.6 <= right, shown


def test_worst_state_wins_and_every_state_is_listed():
    waiting = incident(
        "inc-a",
        step(
            "s1",
            {"asset": "rtu-e01"},
            "awaiting_approval",
            approval_deadline=(NOW - timedelta(minutes=1)).isoformat(),
        ),
        step("s2", {"zone": "energy"}, "verified"),
    )
    health = {"power-distribution": ServiceHealth(healthy=False, detail="connection refused")}
    shown = lab_picture(rows=[row(waiting, ["energy"])], details={"inc-a": waiting}, health=health)
    energy = next(z for z in shown.zones if z.id == "energy")
    assert energy.state == "unhealthy"
    assert energy.states == ["unhealthy", "awaiting_approval", "contained"]
    assert (energy.awaiting_approval, energy.overdue) == (1, 1)
    assert (shown.approvals.pending, shown.approvals.overdue) == (1, 1)
    assert shown.approvals.waiting[0].overdue_since == waiting.steps[0].approval_deadline


def test_an_unread_source_is_named_and_left_empty_not_zero():
    shown = picture(Reads(inventory=lab_inventory(), now=NOW, unavailable=["city record: down"]))
    assert shown.automation.paused is None and shown.budget.used is None
    assert shown.approvals.pending is None
    root = parse(draw.render(shown))
    assert any("city record: down" in t for t in texts(root))
    assert any("Automation state unknown" in t for t in texts(root))


def test_conduits_name_the_zone_each_address_lies_in():
    shown = lab_picture()
    conduits = {c.id: [(e.cidr, e.zone) for e in c.cidrs] for c in shown.conduits}
    assert conduits["soc-mgmt"] == [("198.18.40.5/32", "municipal-it")]
    assert conduits["dispatch-preemption"] == [("198.18.50.10/32", "dispatch")]
    root = parse(draw.render(shown))
    drawn = [g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("data-conduit") == "soc-mgmt"]
    assert len(drawn) == 1
    line = drawn[0].find("svg:line", NS)
    assert line is not None and line.get("stroke-dasharray")
    assert "soc-mgmt kept open" in texts(drawn[0])
