"""Why a responder's read or action did not happen, in the responder's terms.

The service (service.py, authorization.py) raises these; the JSON API and the console
each turn them into their own answer at the edge (problem+json, an HTML page), so the
status a refusal gets is decided in one place per edge and never here.
"""

# ruff: noqa: N818 - outcomes a caller branches on, read as `except Forbidden`; the base is ResponderError

from __future__ import annotations


class ResponderError(Exception):
    """`message` is the sentence a responder is shown."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoPolicy(ResponderError):
    """No approval policy is loaded, so nothing can be authorized (fail closed)."""


class Forbidden(ResponderError):
    """The approval policy does not allow the action (or could not say)."""

    def __init__(self, message: str, *, reasons: list[str], decision_id: str) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.decision_id = decision_id


class UnknownIncident(ResponderError):
    """No such incident."""


class UnknownStep(ResponderError):
    """The incident has no step with that id."""


class Conflict(ResponderError):
    """The incident turned the action down (its state, four-eyes, a grant) or has ended."""


class Unavailable(ResponderError):
    """Temporal did not answer: nothing happened, and the responder may retry."""


class Failed(ResponderError):
    """The incident could not apply the action, for a reason other than a refusal."""
