"""The city record's vocabulary: its workflow id, memo keys, state and the changes
responders make to it (the automation kill switch; the ledger of containments in force).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.incident import Principal

CITY_WORKFLOW_ID = "bulkhead-city"


def city_workflow_id(task_queue: str) -> str:
    """One city record per deployment; a deployment is a task queue."""
    return f"{CITY_WORKFLOW_ID}:{task_queue}"


MEMO_PAUSED = "paused"
MEMO_ACTIVE = "active_containments"


class AutomationChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: Principal
    reason: str = Field(min_length=1, max_length=2000)
    authz_decision_id: str | None = None


class CityView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: bool = False
    changed_by: str | None = None
    changed_at: str | None = None
    reason: str | None = None
    active: dict[str, str] = Field(default_factory=dict, description="incident:step → since")

    @property
    def active_containments(self) -> int:
        return len(self.active)


class ContainmentEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    at: str
