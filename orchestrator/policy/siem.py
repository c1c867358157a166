"""A SIEM's own payload, read by its connector, for a dry run (`policy eval --source`).

The same connectors as POST /v1/webhooks/{source} (orchestrator.ingest.connectors.CONNECTORS),
so a policy engineer evaluates exactly what the SIEM sends, not a hand-made OCSF finding.
Batch sources (NDJSON) are read line by line, as the webhook reads them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from contracts.findings import Finding
from orchestrator.ingest.connectors import CONNECTORS
from orchestrator.ingest.connectors.base import Item, pointer
from orchestrator.policy.dryrun import DryRunError


@dataclass(frozen=True)
class SourceFindings:
    findings: list[Finding]
    ignored: list[str]  # alerts the connector skips on purpose, with its reason


def _documents(text: str, *, ndjson: bool) -> list[tuple[str, Any]]:
    """(JSON pointer prefix, document): one document, or one per line for a batch source."""
    try:
        return [("", json.loads(text))]
    except json.JSONDecodeError as exc:
        if not (ndjson and exc.msg == "Extra data"):
            raise DryRunError(f"not JSON: {exc}") from None
    documents = []
    for index, line in enumerate(line for line in text.split("\n") if line.strip()):
        try:
            documents.append((pointer(index), json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DryRunError(f"line {index + 1} is not JSON: {exc}") from None
    return documents


def findings_from_source(source: str, text: str) -> SourceFindings:
    """Every finding of the payload; DryRunError naming each bad field (as the webhook's 422)."""
    connector = CONNECTORS.get(source)
    if connector is None:
        raise DryRunError(f"unknown source {source!r} (sources: {', '.join(sorted(CONNECTORS))})")
    received_at_ms = int(time.time() * 1000)
    items: list[Item] = []
    for prefix, document in _documents(text, ndjson=connector.ndjson):
        items += [item.at(prefix) for item in connector.items(document, received_at_ms)]
    errors = [{"pointer": e.pointer, "detail": e.detail} for item in items for e in item.errors]
    if errors:
        raise DryRunError(f"{len(errors)} invalid field(s) in the {source} payload", errors)
    findings = [item.finding for item in items if item.finding is not None]
    ignored = [f"{item.pointer or '/'}: {item.ignored}" for item in items if item.ignored]
    if not findings:
        raise DryRunError(f"the {source} payload holds no finding: {'; '.join(ignored) or 'empty'}")
    return SourceFindings(findings, ignored)
