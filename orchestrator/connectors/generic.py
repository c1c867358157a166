"""`generic` source: OCSF Detection Finding JSON, one object or a list of them."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from orchestrator.connectors.base import FieldError, InvalidPayload, field_errors, pointer
from workflows.model import Finding

MAX_FINDINGS_PER_PAYLOAD = 1000


class GenericConnector:
    source = "generic"

    def normalize(self, payload: Any) -> list[Finding]:
        items, prefix = (payload, True) if isinstance(payload, list) else ([payload], False)
        if not items:
            raise InvalidPayload([FieldError("", "expected at least one finding")])
        if len(items) > MAX_FINDINGS_PER_PAYLOAD:
            raise InvalidPayload(
                [FieldError("", f"at most {MAX_FINDINGS_PER_PAYLOAD} findings per payload")]
            )
        findings: list[Finding] = []
        errors: list[FieldError] = []
        for index, item in enumerate(items):
            where: tuple[int, ...] = (index,) if prefix else ()
            if not isinstance(item, dict):
                errors.append(FieldError(pointer(*where), "expected a JSON object"))
                continue
            document = {k: v for k, v in item.items() if k != "raw_data"}
            try:
                finding = Finding.model_validate(document)
            except ValidationError as exc:
                errors.extend(field_errors(exc, *where))
                continue
            # Keep what the SIEM sent, verbatim, for the audit and for re-normalization.
            findings.append(finding.model_copy(update={"raw_data": json.dumps(item)}))
        if errors:
            raise InvalidPayload(errors)
        return findings
