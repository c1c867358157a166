"""The search attributes incidents publish (workflows/visibility.py), made to exist.

An incident that upserts a search attribute its namespace does not know fails its
workflow task, and keeps failing: so a worker checks for them before it polls, adds the
missing ones where it may (the dev server, a self-hosted cluster with operator rights),
and otherwise refuses to start, saying how to create them.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from workflows.visibility import KEYS

# The dev server's `--search-attribute NAME=TYPE` spelling of each type.
_CLI_TYPES = {
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
}


def wanted() -> dict[str, IndexedValueType.ValueType]:
    return {key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in KEYS}


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register every search attribute."""
    flags: list[str] = []
    for name, kind in wanted().items():
        flags += ["--search-attribute", f"{name}={_CLI_TYPES[kind]}"]
    return flags


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Every search attribute exists in the namespace, or RuntimeError saying how to add it."""
    service = client.operator_service
    try:
        known = await service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as exc:
        raise RuntimeError(f"cannot list the search attributes of {namespace}: {exc}") from exc
    present = {**known.system_attributes, **known.custom_attributes}
    missing = {name: kind for name, kind in wanted().items() if name not in present}
    if not missing:
        return
    try:
        await service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as exc:
        commands = "; ".join(
            f"temporal operator search-attribute create --namespace {namespace} "
            f"--name {name} --type {_CLI_TYPES[kind]}"
            for name, kind in missing.items()
        )
        raise RuntimeError(
            f"namespace {namespace} lacks the search attributes {sorted(missing)} and they "
            f"could not be added ({exc.message}); an operator can add them: {commands}"
        ) from exc
