"""Connectors: one small module per SIEM source, each normalizing to OCSF findings."""

from __future__ import annotations

from orchestrator.ingest.connectors.registry import CONNECTORS

__all__ = ["CONNECTORS"]
