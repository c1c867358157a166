"""`bulkhead principals add|ls|rm`: responders and their bearer tokens."""

from __future__ import annotations

import sys

from orchestrator.config import Settings
from orchestrator.responders.principals import PrincipalError, PrincipalStore


def add(settings: Settings, name: str, roles: list[str]) -> int:
    store = PrincipalStore(settings.principals_path)
    try:
        token = store.add(name, roles)
    except PrincipalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"Added {name} ({', '.join(roles)}). The token above is shown only now; Bulkhead "
        f"keeps its hash in {store.path}. Use it as `Authorization: Bearer <token>` or "
        "BULKHEAD_TOKEN.",
        file=sys.stderr,
    )
    return 0


def ls(settings: Settings) -> int:
    records = PrincipalStore(settings.principals_path).list()
    if not records:
        print("(no principals; add one with `bulkhead principals add NAME --role responder`)")
        return 0
    print(f"{'NAME':<24} {'ROLES':<40} CREATED")
    for record in records:
        print(f"{record.name:<24} {','.join(record.roles):<40} {record.created_at}")
    return 0


def rm(settings: Settings, name: str) -> int:
    try:
        PrincipalStore(settings.principals_path).remove(name)
    except PrincipalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Removed {name}; its token no longer works.", file=sys.stderr)
    return 0
