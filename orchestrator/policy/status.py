"""What an engine reports about the policy it serves (`GET /v1/policy`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Rejection:
    """A policy change that was refused; the previous version kept serving."""

    at: datetime
    reason: str
    tree_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "reason": self.reason, "tree_hash": self.tree_hash}


@dataclass(frozen=True)
class PolicyStatus:
    engine: str
    version: str
    source: str
    loaded_at: datetime | None
    last_rejection: Rejection | None = None
    reload: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "version": self.version,
            "source": self.source,
            "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
            "hot_reload": self.reload,
            "last_rejection": self.last_rejection.as_dict() if self.last_rejection else None,
        }
