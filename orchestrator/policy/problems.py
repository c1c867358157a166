"""One thing `bulkhead policy check` found wrong, and what it is about.

`group` is what a reader fixes: a file, a case, an inventory record, a swept asset; the
report lists each group's problems together. `line` is set where a file has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    group: str
    message: str
    line: int | None = None

    def describe(self) -> str:
        """One line, as an editor or a log reads it: `group:line: message`."""
        where = f"{self.group}:{self.line}" if self.line is not None else self.group
        return f"{where}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {"group": self.group, "line": self.line, "message": self.message}
