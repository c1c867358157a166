"""What went wrong when the orchestrator called a workflow, in the callers' terms.

The incident client (incidents.py) and the city client (city.py) turn Temporal's errors
(an `RPCError` status, an update failure whose cause has type `Refused`) into these, so
the responder service and the benchmarks branch on a class, never on a status code or a
string; and the HTTP status each one gets is decided at the edge, not here.
"""

# ruff: noqa: N818 - outcomes a caller branches on, read as `except Refused`; the base is WorkflowCallError

from __future__ import annotations


class WorkflowCallError(Exception):
    """Temporal's answer to a call on a workflow, as the callers branch on it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(WorkflowCallError):
    """No such workflow (incident); for an update or a signal: none running under that id."""


class Refused(WorkflowCallError):
    """The workflow turned the update down (its validator or handler); nothing changed.
    `message` is the workflow's own reason."""


class UpdateFailed(WorkflowCallError):
    """The update failed in the workflow for another reason than a refusal."""


class InvalidArgument(WorkflowCallError):
    """Temporal refused an argument of a list call (its query or page token)."""


class Unavailable(WorkflowCallError):
    """Temporal did not answer (down, slow, overloaded): nothing happened; retry.
    `message` is Temporal's own."""
