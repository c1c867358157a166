"""JSON Schemas of the policy boundary, generated from the pydantic models.

policies/schemas/ holds them for policy engineers and editors; a test fails when they
drift from the models, and `bulkhead policy schemas --write` regenerates them.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from contracts.decision import Decision
from orchestrator.policy.models import (
    AuthorizationInput,
    ContainmentInput,
    GuardrailsDocument,
    InventoryDocument,
    PolicyCase,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"

MODELS: dict[str, type[BaseModel]] = {
    "containment-input.schema.json": ContainmentInput,
    "decision.schema.json": Decision,
    "authorization-input.schema.json": AuthorizationInput,
    "inventory.schema.json": InventoryDocument,
    "guardrails.schema.json": GuardrailsDocument,
    "case.schema.json": PolicyCase,
}


def generate() -> dict[str, str]:
    """File name → schema text, deterministic (sorted keys, trailing newline)."""
    texts: dict[str, str] = {}
    for name, model in MODELS.items():
        schema = {"$schema": DRAFT, "$id": name, **model.model_json_schema()}
        texts[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return texts


def stale(schema_dir: Path) -> list[str]:
    """Schemas missing from, or different in, `schema_dir`."""
    return [
        name
        for name, text in generate().items()
        if not (schema_dir / name).is_file() or (schema_dir / name).read_text() != text
    ]


def write(schema_dir: Path) -> list[str]:
    """Regenerate the schemas that changed; returns their names."""
    changed = stale(schema_dir)
    schema_dir.mkdir(parents=True, exist_ok=True)
    texts = generate()
    for name in changed:
        (schema_dir / name).write_text(texts[name])
    return changed
