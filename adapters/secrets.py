"""Credentials for adapters: named by an environment variable or a file, read when used.

Read lazily, at each call, so a rotated file or a lab that writes its secrets after the
worker started is picked up; and never kept in a repr, so a secret cannot reach a log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.base import PermanentAdapterError


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: `env` (a variable name) or `file` (a path); env wins."""

    env: str | None = None
    file: Path | None = None

    @classmethod
    def from_config(
        cls, config: dict[str, Any], prefix: str, *, base: Path | None = None
    ) -> SecretRef:
        """`{prefix}_env` / `{prefix}_file` keys of an inventory record; relative files
        are taken from `base` (the lab's secrets directory, for instance)."""
        env = config.get(f"{prefix}_env")
        file = config.get(f"{prefix}_file")
        path = Path(file) if file else None
        if path is not None and base is not None and not path.is_absolute():
            path = base / path
        return cls(env=str(env) if env else None, file=path)

    def read(self) -> str:
        if self.env:
            value = os.environ.get(self.env)
            if value:
                return value
        if self.file is not None:
            try:
                return self.file.read_text().strip()
            except OSError as exc:
                raise PermanentAdapterError(
                    f"credential file {self.file} cannot be read: {exc.strerror}"
                ) from exc
        raise PermanentAdapterError(f"no credential configured ({self.describe()})")

    def describe(self) -> str:
        """Where the secret comes from, for error messages; never the value."""
        places = [f"env {self.env}" if self.env else "", f"file {self.file}" if self.file else ""]
        return " or ".join(p for p in places if p) or "nothing configured"

    def __repr__(self) -> str:
        return f"SecretRef({self.describe()})"
