"""regorus's AST, as `Engine.get_ast_as_json` gives it: modules, their imports and rules.

Every node is `{"Kind": {...}}` with a `span` (1-based line, byte offsets into the
module's source); some names (an import's alias, an `every` variable) come only as spans.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import regorus

Node = dict[str, Any]
Path = tuple[str, ...]


@dataclass
class Module:
    file: str
    package: str
    source: bytes
    imports: dict[str, Path]
    rules: list[Node]


def kind_of(node: Node) -> tuple[str, Any]:
    (kind, payload), *_ = node.items()
    return kind, payload


def is_node(value: Any) -> bool:
    """An AST node is `{"Kind": {...}}`; spans and other fields are lower-case."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value))[:1].isupper()


def line_of(payload: Any) -> int:
    span = payload.get("span") if isinstance(payload, dict) else None
    return int(span["line"]) if isinstance(span, dict) else 0


def dotted(node: Node) -> list[str] | None:
    """`lib.approval` → ["lib", "approval"]; None for anything but a plain reference."""
    kind, payload = kind_of(node)
    if kind == "Var":
        return [str(payload["value"])]
    if kind == "RefDot":
        base = dotted(payload["refr"])
        return None if base is None else [*base, str(payload["field"][1])]
    return None


def modules_of(engine: regorus.Engine) -> list[Module]:
    modules = []
    for entry in json.loads(engine.get_ast_as_json()):
        ast, source = entry["ast"], entry["source"]
        imports: dict[str, Path] = {}
        text = source["contents"].encode()
        for item in ast.get("imports", []):
            path = dotted(item["refr"]) or []
            alias = item.get("as")
            # regorus gives the alias as a span of the source, not as text.
            name = text[alias["start"] : alias["end"]].decode() if alias else path[-1]
            imports[name] = tuple(path)
        package = ".".join(dotted(ast["package"]["refr"]) or [])
        modules.append(Module(source["file"], package, text, imports, ast.get("rules", [])))
    return modules
