"""The data documents validated against their models, each error with its file and line.

Same models as the engine's load gate (orchestrator.policy.models.DATA_MODELS); this
only says where: the line of the offending key, or of the object missing one.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from orchestrator.policy.bundle import PolicyBundle
from orchestrator.policy.jsonpos import KeyPath, key_lines
from orchestrator.policy.models import DATA_MODELS
from orchestrator.policy.problems import Problem

# The inventory's cross-reference check reports "assets.pump-9.zone: unknown zone 'x'; …"
# as one error at the root: each part names its own key.
_PART = re.compile(r"^(?P<path>[\w.-]+): (?P<message>.+)$")


def _line(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The key's line, or its nearest ancestor's (a missing key: the object lacking it)."""
    for depth in range(len(path), 0, -1):
        if path[:depth] in lines:
            return lines[path[:depth]]
    return None


def _problems_of(file: str, exc: ValidationError, lines: dict[KeyPath, int]) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts = [message] if loc else message.split("; ")
        for part in parts:
            found = _PART.match(part) if not loc else None
            path = tuple(found["path"].split(".")) if found else loc
            shown = ".".join(loc) or "(root)"
            text = part if found else f"{shown}: {part}"
            problems.append(Problem(file, text, _line(lines, path)))
    return problems


def data_file_problems(bundle: PolicyBundle) -> list[Problem]:
    """Every data document that has a model, validated; one problem per error."""
    problems: list[Problem] = []
    for name, model in DATA_MODELS.items():
        document: Any = bundle.data.get(name)
        if document is None:
            continue
        try:
            model.model_validate(document)
        except ValidationError as exc:
            lines = key_lines(bundle.data_texts.get(name, ""))
            problems += _problems_of(f"data/{name}.json", exc, lines)
    return problems
