"""The city picture as an SVG map: a pure function, the same picture gives the same bytes.

Layout: a banner while automation is paused; the city, the time (UTC) and the blast-
radius budget bar; the enforcement points as a band across the middle; the zones as
cards in rows of three above and below it, each joined to the point that guards it; the
conduits a containment keeps open as dashed links from their zone to the band; a legend.
Each zone's state is written in words as well as coloured, and each card lists what is
contained in it (step and lease end), what waits for approval, and its services.
"""

from __future__ import annotations

from orchestrator.city import svg
from orchestrator.city.model import STATE_WORDS, CityPicture, Zone
from orchestrator.responders import times

WIDTH = 1000
MARGIN = 20
COLUMNS = 3
GAP = 16
CARD_W = (WIDTH - 2 * MARGIN - (COLUMNS - 1) * GAP) / COLUMNS
LINE = 15
MAX_LINES = 4  # contained steps listed per card; the rest are counted
BAND_H = 44
# fill, stroke: state by colour and, always beside it, in words
COLOURS = {
    "normal": ("#e8f5e9", "#2e7d32"),
    "contained": ("#e3f2fd", "#1565c0"),
    "awaiting_approval": ("#fff8e1", "#a15c00"),
    "unhealthy": ("#ffebee", "#c62828"),
}
MARKS = {"normal": "✓", "contained": "■", "awaiting_approval": "◆", "unhealthy": "✖"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def clock(at: str | None) -> str:
    """`00:59 UTC` (with the date when it is not today's): times in one zone, labelled."""
    moment = times.parse(at)  # a time without an offset is UTC, as the workflows write
    if moment is None:
        return at or "-"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _hm(at: str | None, today: str) -> str:
    shown = clock(at)
    return shown.removeprefix(today + " ") if shown.startswith(today) else shown


def _state_line(zone: Zone) -> str:
    words = STATE_WORDS[zone.state].upper()
    if zone.state == "awaiting_approval":
        words += f" ({zone.awaiting_approval}" + (
            f", {zone.overdue} overdue)" if zone.overdue else ")"
        )
    return f"{MARKS[zone.state]} {words}"


def _card_lines(zone: Zone, today: str) -> list[tuple[str, str]]:
    """(text, css class) lines of a zone's card under its name."""
    lines = [(_state_line(zone), "state")]
    others = [STATE_WORDS[s] for s in zone.states if s not in (zone.state, "normal")]
    if others:
        lines.append(("also: " + ", ".join(others), "note"))
    if zone.overdue and zone.state != "awaiting_approval":
        lines.append((f"{zone.overdue} approval(s) overdue", "note"))
    for held in zone.contained[:MAX_LINES]:
        lease = _hm(held.lease_expires_at, today) if held.lease_expires_at else None
        lines.append((f"{held.step_id} ({held.target})", "contained"))
        lines.append((f"  lease ends {lease}" if lease else "  no lease", "lease"))
    if len(zone.contained) > MAX_LINES:
        lines.append((f"and {len(zone.contained) - MAX_LINES} more contained", "note"))
    for service in zone.services:
        health = {True: "healthy", False: "UNHEALTHY", None: "unknown"}[service.healthy]
        lines.append((f"service {service.id}: {health}", "service"))
    return lines


def _card_height(lines: int) -> float:
    return 40 + LINE * lines + 8


def _zone_card(zone: Zone, index: int, at: tuple[float, float, float], today: str) -> str:
    x, y, h = at
    fill, stroke = COLOURS[zone.state]
    sub = " · ".join(p for p in (zone.criticality, "essential" if zone.essential else "") if p)
    parts = [
        svg.title(f"zone {zone.id}: {STATE_WORDS[zone.state]}"),
        svg.rect(x, y, CARD_W, h, rx=6, fill=fill, stroke=stroke, stroke_width=2),
        svg.text(
            x + 10,
            y + 18,
            zone.id,
            width=CARD_W - 20,
            size=14,
            font_weight="bold",
            class_="zone-name",
        ),
        svg.text(x + 10, y + 33, sub or zone.description, width=CARD_W - 20, size=11, fill="#444"),
    ]
    for n, (words, kind) in enumerate(_card_lines(zone, today)):
        weight = "bold" if kind == "state" else None
        colour = stroke if kind == "state" else "#222"
        parts.append(
            svg.text(
                x + 10,
                y + 50 + n * LINE,
                words,
                width=CARD_W - 20,
                size=11,
                fill=colour,
                font_weight=weight,
                class_=f"zone-{kind}",
            )
        )
    return svg.group(
        parts,
        id=f"zone-{index}",
        class_=f"zone zone-{zone.state}",
        data_zone=zone.id,
        data_state=zone.state,
    )


BANNER_H = 50


def _banner(picture: CityPicture) -> tuple[list[str], float]:
    """Across the top while automation is paused (who, when, why), or unknown."""
    automation = picture.automation
    if automation.paused is False:
        return [], 0
    if automation.paused is None:
        words = "Automation state unknown: the city record could not be read"
        then, fill = "new steps may or may not wait for approval", "#616161"
    else:
        who = automation.changed_by or "someone"
        when = f" at {clock(automation.changed_at)}" if automation.changed_at else ""
        why = f": {automation.reason}" if automation.reason else ""
        words = f"‖ AUTOMATION PAUSED by {who}{when}{why}"
        then, fill = "every new step waits for a person to approve it", "#b71c1c"
    inner = WIDTH - 2 * MARGIN
    return [
        svg.group(
            [
                svg.title(f"{words}; {then}"),  # the whole reason, however long
                svg.rect(0, 0, WIDTH, BANNER_H, fill=fill),
                svg.text(MARGIN, 21, words, width=inner, size=14, fill="#fff", font_weight="bold"),
                svg.text(MARGIN, 40, then, width=inner, size=12, fill="#fff"),
            ],
            id="banner",
            class_="banner paused" if automation.paused else "banner unknown",
            role="alert",
        )
    ], BANNER_H


def _header(picture: CityPicture, top: float) -> list[str]:
    budget = picture.budget
    used = "?" if budget.used is None else str(budget.used)
    most = "?" if budget.max is None else str(budget.max)
    words = f"{used} of {most} automatic containments"
    share = 0.0
    if budget.used is not None and budget.max:
        share = min(1.0, budget.used / budget.max)
    bar_x, bar_w = WIDTH - MARGIN - 360, 360
    approvals = picture.approvals
    pending = "?" if approvals.pending is None else str(approvals.pending)
    overdue = "?" if approvals.overdue is None else str(approvals.overdue)
    parts = [
        svg.text(MARGIN, top + 24, picture.city, width=WIDTH / 2, size=20, font_weight="bold"),
        svg.text(
            MARGIN,
            top + 42,
            f"as of {clock(picture.generated_at)}",
            width=WIDTH / 2,
            size=12,
            fill="#444",
        ),
        svg.text(
            MARGIN,
            top + 58,
            f"approvals: {pending} pending, {overdue} overdue",
            width=WIDTH / 2,
            size=12,
            class_="approvals",
        ),
        svg.group(
            [
                svg.title(f"blast-radius budget: {words}"),
                svg.text(bar_x, top + 16, "Blast-radius budget", width=bar_w, size=11, fill="#444"),
                svg.rect(bar_x, top + 22, bar_w, 14, fill="#eee", stroke="#999"),
                svg.rect(
                    bar_x, top + 22, bar_w * share, 14, fill="#c62828" if share >= 1 else "#1565c0"
                ),
                svg.text(bar_x, top + 52, words, width=bar_w, size=12, class_="budget-words"),
            ],
            id="budget",
            class_="budget",
        ),
    ]
    if picture.unavailable:
        parts.append(
            svg.text(
                MARGIN,
                top + 74,
                "not shown: " + "; ".join(picture.unavailable),
                width=WIDTH - 2 * MARGIN,
                size=11,
                fill="#b71c1c",
                class_="unavailable",
            )
        )
    return parts


def _rows(zones: list[Zone], today: str) -> list[tuple[list[tuple[int, Zone]], float]]:
    rows = []
    indexed = list(enumerate(zones))
    for start in range(0, len(indexed), COLUMNS):
        chunk = indexed[start : start + COLUMNS]
        height = max(_card_height(len(_card_lines(z, today))) for _, z in chunk)
        rows.append((chunk, height))
    return rows


def render(picture: CityPicture) -> str:
    """The SVG document (UTF-8 text) of the picture."""
    today = clock(picture.generated_at)[:10]
    body, top = _banner(picture)
    body += _header(picture, top)
    y = top + (86 if picture.unavailable else 72)
    rows = _rows(picture.zones, today)
    above = rows[: (len(rows) + 1) // 2]
    below = rows[len(above) :]
    centres: dict[str, tuple[float, float, bool]] = {}  # zone → (x, edge y, above the band)

    def place(chunk: list[tuple[int, Zone]], height: float, at: float, *, is_above: bool) -> None:
        for col, (index, zone) in enumerate(chunk):
            x = MARGIN + col * (CARD_W + GAP)
            body.append(_zone_card(zone, index, (x, at, height), today))
            centres.setdefault(zone.id, (x + CARD_W / 2, at + height if is_above else at, is_above))

    for chunk, height in above:
        place(chunk, height, y, is_above=True)
        y += height + GAP
    if not picture.zones:
        body.append(svg.text(MARGIN, y + 20, "No zones in the inventory", width=WIDTH, size=13))
        y += 30
    band_y = y + 24
    y = band_y + BAND_H + 40
    for chunk, height in below:
        place(chunk, height, y, is_above=False)
        y += height + GAP
    links, band = _band(picture, band_y, centres)
    body = links + body + band
    legend_y = y + 8
    body += _legend(legend_y)
    height = legend_y + 30
    return _document(picture, body, height)


def _band(
    picture: CityPicture, band_y: float, centres: dict[str, tuple[float, float, bool]]
) -> tuple[list[str], list[str]]:
    """Enforcement points across the middle, zone links, and the conduits kept open."""
    points = picture.enforcement_points
    links: list[str] = []
    band: list[str] = []
    span = (WIDTH - 2 * MARGIN) / max(1, len(points))
    point_x: dict[str, float] = {}
    for n, point in enumerate(points):
        x = MARGIN + n * span
        label = f"enforcement point {point.id}" + (
            f": {point.description}" if point.description else ""
        )
        band.append(
            svg.group(
                [
                    svg.rect(x + 2, band_y, span - 4, BAND_H, rx=8, fill="#37474f"),
                    svg.text(x + 14, band_y + 27, label, width=span - 28, size=13, fill="#fff"),
                ],
                class_="enforcement-point",
                data_point=point.id,
            )
        )
        for zone in point.zones:
            point_x.setdefault(zone, x + span / 2)
    for zone_id, (cx, edge, is_above) in centres.items():
        if zone_id in point_x:
            # To the point that guards the zone; straight down when it spans the card.
            px = cx if abs(point_x[zone_id] - cx) < span / 2 else point_x[zone_id]
            end = band_y if is_above else band_y + BAND_H
            links.append(svg.line(cx, edge, px, end, stroke="#90a4ae", stroke_width=3))
    for n, conduit in enumerate(picture.conduits):
        zones = [end.zone for end in conduit.cidrs if end.zone in centres]
        where = centres.get(zones[0]) if zones else None
        cx, edge, is_above = where or (MARGIN + 40, band_y, True)
        x = cx + 24 + 14 * (n % 4)
        end = band_y if is_above else band_y + BAND_H
        cidrs = ", ".join(c.cidr for c in conduit.cidrs)
        label_y = (edge + end) / 2 if where else band_y - 6
        links.append(
            svg.group(
                [
                    svg.title(f"conduit {conduit.id} ({cidrs}) kept open: {conduit.description}"),
                    svg.line(
                        x, edge, x, end, stroke="#6a1b9a", stroke_width=2, stroke_dasharray="6 4"
                    ),
                    svg.text(
                        x + 4,
                        label_y,
                        f"{conduit.id} kept open",
                        width=CARD_W - 40,
                        size=10,
                        fill="#6a1b9a",
                    ),
                ],
                class_="conduit",
                data_conduit=conduit.id,
            )
        )
    return links, band


def _legend(y: float) -> list[str]:
    parts = []
    x = float(MARGIN)
    for state, (fill, stroke) in COLOURS.items():
        parts.append(svg.rect(x, y, 14, 14, fill=fill, stroke=stroke, stroke_width=2))
        words = f"{MARKS[state]} {STATE_WORDS[state]}"
        parts.append(svg.text(x + 20, y + 11, words, width=260, size=11))
        x += 40 + len(words) * 6.5
    parts.append(
        svg.line(x, y + 7, x + 30, y + 7, stroke="#6a1b9a", stroke_width=2, stroke_dasharray="6 4")
    )
    parts.append(svg.text(x + 36, y + 11, "conduit kept open", width=160, size=11))
    return [svg.group(parts, class_="legend")]


def describe(picture: CityPicture) -> str:
    """The picture in sentences: the map's <desc>, for those who do not see it."""
    automation = picture.automation
    if automation.paused:
        state = f"Automation paused by {automation.changed_by or 'someone'}"
        state += f": {automation.reason}." if automation.reason else "."
    elif automation.paused is None:
        state = "Automation state unknown."
    else:
        state = "Automation running."
    used, most = (
        ("unknown" if n is None else n) for n in (picture.budget.used, picture.budget.max)
    )
    budget = f"{used} of {most} automatic containments in force."
    zones = "; ".join(
        f"zone {z.id}: {', '.join(STATE_WORDS[s] for s in z.states)}" for z in picture.zones
    )
    return " ".join(
        p
        for p in (
            f"{picture.city}, {clock(picture.generated_at)}.",
            state,
            budget,
            f"Zones: {zones}." if zones else "No zones.",
        )
        if p
    )


def _document(picture: CityPicture, body: list[str], height: float) -> str:
    head = svg.attrs(
        xmlns=svg.SVG_NS,
        role="img",
        aria_labelledby="map-title map-desc",
        width=WIDTH,
        height=int(height),
        viewBox=f"0 0 {WIDTH} {int(height)}",
        font_family=FONT,
    )
    return (
        f"<svg {head}>"
        f'<title id="map-title">{svg.plain(f"{picture.city}: the city right now")}</title>'
        f'<desc id="map-desc">{svg.plain(describe(picture))}</desc>' + "".join(body) + "</svg>\n"
    )
