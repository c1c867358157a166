"""Where a person is sent: the console's page of an incident, and the card of one of its
steps on it. The console renders the anchors; messages (orchestrator/notify) link to them.
"""

from __future__ import annotations

import re
from urllib.parse import quote


def step_anchor(step_id: str) -> str:
    """The HTML id of a step's card: stable across renders, so links and focus survive."""
    return "step-" + re.sub(r"[^A-Za-z0-9_-]+", "-", step_id)


def console_link(public_url: str, incident_id: str, step_id: str | None = None) -> str:
    """The incident's console page, at the step's card when a step is named."""
    page = f"{public_url.rstrip('/')}/console/incidents/{quote(incident_id, safe='')}"
    return page + (f"#{step_anchor(step_id)}" if step_id else "")
