"""Connectors: one small module per SIEM source, each normalizing to OCSF findings."""

from __future__ import annotations

from orchestrator.connectors.base import Connector
from orchestrator.connectors.generic import GenericConnector

CONNECTORS: dict[str, Connector] = {c.source: c for c in (GenericConnector(),)}
