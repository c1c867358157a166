"""The names Temporal carries between the workflows and everyone who talks to them.

A workflow calls an activity by name, and a client sends a signal or update by name, so
both sides read them from here: a rename is one edit, and a typo is an import error.
"""

from __future__ import annotations

from enum import StrEnum


class Activity(StrEnum):
    """Activities the incident and city workflows run (orchestrator/activities.py, grants.py)."""

    DECIDE = "decide"
    PLAN = "plan_step"
    # `plan_step` as a local activity that records its plan in history before it returns
    # (a signal to its own workflow run): workflows/changing.py, `_plan`.
    PLAN_RECORDED = "plan_step_recorded"
    APPLY = "apply_step"
    VERIFY = "verify_step"
    # Probe the guard, plan (recorded as PLAN_RECORDED does), apply and verify in one
    # local activity: workflows/changing.py, `_contain`.
    CONTAIN = "contain_step"
    ROLLBACK = "rollback_step"
    RENEW_LEASE = "renew_lease"
    PROBE_GUARD = "probe_guard"
    EXPORT_AUDIT = "export_audit"
    # A regular activity that does nothing but end the workflow task that awaits it, so
    # what its local activities read is in history before the run acts on it:
    # workflows/changing.py, `record_reads`.
    RECORD_READS = "record_reads"
    VERIFY_GRANT = "verify_grant"


# In the details of a CONTAIN activity's error when it failed in or after apply, once its
# plan was recorded: the change may have landed (workflows/changing.py, _contain).
APPLY_FAILED = "apply-failed"


class IncidentSignal(StrEnum):
    FINDING = "finding"
    FINDINGS = "findings"  # a list of FindingEnvelope, for one incident, in arrival order
    RECHECK = "recheck"
    PLAN_RECORDED = "plan_recorded"  # a RecordedPlan, from the PLAN_RECORDED activity


class IncidentUpdate(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    EXTEND = "extend"
    RELEASE = "release"
    RELEASE_STEP = "release_step"


class CitySignal(StrEnum):
    CONTAINMENT_STARTED = "containment_started"
    CONTAINMENT_ENDED = "containment_ended"


class CityUpdate(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"


# Both workflows answer one query, their whole state.
STATE_QUERY = "state"


class ErrorType(StrEnum):
    """`ApplicationError.type` values that callers branch on."""

    # A workflow update's validator or handler turned the request down (HTTP 409).
    REFUSED = "Refused"
    # The adapter says retrying cannot help; the workflow does not retry it.
    PERMANENT_ADAPTER = "PermanentAdapterError"
    # The target may accept the same call later; the workflow retries within its budget.
    TRANSIENT_ADAPTER = "TransientAdapterError"
