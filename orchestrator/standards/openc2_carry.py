"""How an OpenC2 command travels into an incident: as a finding, like any other.

The command rides in the finding's `raw_data`, the field a finding keeps for what its
producer said in its own words. A webhook's raw payload always moves to the raw store
before a finding reaches Temporal (ingest/raw_store.check_in), so only the OpenC2 route
puts one inline, and only this module's product name marks it: a SIEM cannot forge a
command. The payload is the policy's `input.command` document, kept under the inline
budget of contracts/compact.py so the workflow keeps it whole.

Two resources name the finding's subject: the command's target entity first (the
incident key, as for any finding) and the command itself, so each command is news to the
incident's picture (workflows/picture.py) and is decided, even about a known entity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import ValidationError

from contracts.compact import RAW_INLINE_CHARS
from contracts.findings import (
    ConfidenceId,
    Finding,
    FindingInfo,
    Metadata,
    Product,
    Resource,
    SeverityId,
)
from orchestrator.policy.models import CommandInput

PRODUCT = "Bulkhead OpenC2 consumer"
COMMAND_RESOURCE = "openc2-command"


class CommandTooLargeError(ValueError):
    """The command does not fit inline in the finding (a 400: nothing real is that big)."""


def finding_uid(command: CommandInput) -> str:
    """One finding per producer and command id: a resent command is a duplicate."""
    return f"openc2:{command.producer.id}:{command.command_id}"


def finding_of(
    command: CommandInput, *, entity: str, kind: str, zone: str | None, title: str, now_ms: int
) -> Finding:
    payload = command.model_dump_json(exclude_none=True)
    if len(payload) > RAW_INLINE_CHARS:
        raise CommandTooLargeError(
            f"the command takes {len(payload)} characters; at most {RAW_INLINE_CHARS}"
        )
    return Finding(
        finding_info=FindingInfo(uid=finding_uid(command), title=title[:512]),
        # A command is a confident, serious claim; the policy reads it from input.command,
        # not from these, which only order it among the incident's findings.
        severity_id=SeverityId.HIGH,
        confidence_id=ConfidenceId.HIGH,
        time=now_ms,
        resources=[
            Resource(uid=entity, type=kind, zone=zone),
            Resource(uid=f"openc2:{command.command_id}", type=COMMAND_RESOURCE, name=title[:256]),
        ],
        metadata=Metadata(product=Product(name=PRODUCT, vendor_name=command.producer.name)),
        raw_data=payload,
    )


def carried_command(finding: Finding) -> CommandInput | None:
    """The command a finding carries, or None for any other finding."""
    if finding.metadata.product.name != PRODUCT or finding.raw_data is None:
        return None
    try:
        return CommandInput.model_validate(json.loads(finding.raw_data))
    except (ValueError, ValidationError):
        return None


def split_commands(findings: Sequence[Finding]) -> tuple[list[Finding], CommandInput | None]:
    """(the findings that are detections, the latest command): the policy judges the
    detections as findings and the command as the incident's standing request."""
    detections: list[Finding] = []
    latest: CommandInput | None = None
    for finding in findings:
        command = carried_command(finding)
        if command is None:
            detections.append(finding)
        else:
            latest = command
    return detections, latest


def commands_of(findings: Sequence[Finding]) -> list[CommandInput]:
    """Every command an incident keeps, oldest first."""
    return [c for c in map(carried_command, findings) if c is not None]
