"""A policy directory read once into memory: modules, tests, data, cases, and their hashes.

Everything downstream (compile, check, hot reload) works on this snapshot, so what was
checked is exactly what gets served even when an editor writes files mid-read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEST_SUFFIX = "_test.rego"
# Settings of `bulkhead policy check`'s lints (data keys kept on purpose though nothing
# reads them); outside data/, so it is no data document.
LINT_FILE = "lint.json"


class PolicyLoadError(Exception):
    """The policy directory does not compile or its data does not parse."""


@dataclass(frozen=True)
class PolicyBundle:
    """Rego modules (tests excluded) and data documents, with their content hash.

    `version` hashes what decides (modules + data): it is the `policy_version` of every
    decision. `tree_hash` also covers tests, cases and lint.json: the watcher re-checks
    when it moves. `data_texts` keep the data files as written, so a check names lines.
    """

    modules: dict[str, str]
    data: dict[str, Any]
    version: str
    tests: dict[str, str] = field(default_factory=dict)
    cases: dict[str, str] = field(default_factory=dict)
    tree_hash: str = ""
    root: Path | None = None
    data_texts: dict[str, str] = field(default_factory=dict)
    lint: str = ""

    @classmethod
    def read(cls, policy_dir: Path) -> PolicyBundle:
        if not policy_dir.is_dir():
            raise PolicyLoadError(f"policy directory {policy_dir} does not exist")
        version = hashlib.sha256()
        tree = hashlib.sha256()
        modules: dict[str, str] = {}
        tests: dict[str, str] = {}
        for path in sorted(policy_dir.rglob("*.rego")):
            relative = path.relative_to(policy_dir).as_posix()
            text = _read_text(path)
            tree.update(f"{relative}\0{text}\0".encode())
            if path.name.endswith(TEST_SUFFIX):
                tests[relative] = text
                continue
            modules[relative] = text
            version.update(f"{relative}\0{text}\0".encode())
        data: dict[str, Any] = {}
        data_texts: dict[str, str] = {}
        for path in sorted((policy_dir / "data").glob("*.json")):
            text = data_texts[path.stem] = _read_text(path)
            try:
                data[path.stem] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PolicyLoadError(f"{path}: {exc}") from exc
            version.update(f"data/{path.name}\0{text}\0".encode())
            tree.update(f"data/{path.name}\0{text}\0".encode())
        cases: dict[str, str] = {}
        for path in sorted((policy_dir / "cases").glob("*.json")):
            cases[path.name] = _read_text(path)
            tree.update(f"cases/{path.name}\0{cases[path.name]}\0".encode())
        lint_path = policy_dir / LINT_FILE
        lint = _read_text(lint_path) if lint_path.is_file() else ""
        tree.update(f"{LINT_FILE}\0{lint}\0".encode())
        if not modules:
            raise PolicyLoadError(f"no .rego files under {policy_dir}")
        return cls(
            modules=modules,
            data=data,
            version="sha256:" + version.hexdigest()[:16],
            tests=tests,
            cases=cases,
            tree_hash="sha256:" + tree.hexdigest(),
            root=policy_dir,
            data_texts=data_texts,
            lint=lint,
        )

    @classmethod
    def from_parts(cls, modules: dict[str, str], data: dict[str, Any]) -> PolicyBundle:
        """A bundle built in memory (tests, benchmarks): hashed over canonical JSON data."""
        version = hashlib.sha256()
        for name in sorted(modules):
            version.update(f"{name}\0{modules[name]}\0".encode())
        version.update(json.dumps(data, sort_keys=True).encode())
        return cls(modules=dict(modules), data=data, version="sha256:" + version.hexdigest()[:16])

    def with_data(self, data: dict[str, Any]) -> PolicyBundle:
        """The same modules over other data (a random inventory, a what-if)."""
        return PolicyBundle.from_parts(self.modules, data)

    def export_for_opa(self, target: Path) -> Path:
        """Write the bundle as `opa run --server DIR` loads it.

        OPA names a data file by its directory, not its file name, so `data/inventory.json`
        would land at `data.data`; one root `data.json` keeps `data.inventory` and
        `data.guardrails` where the policies expect them. Cases and schemas stay out.
        """
        for name, text in {**self.modules, **self.tests}.items():
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (target / "data.json").write_text(json.dumps(self.data))
        return target


def tree_hash(policy_dir: Path) -> str:
    """The hash the watcher compares, without parsing anything (cheap enough every second)."""
    tree = hashlib.sha256()
    try:
        for path in sorted(policy_dir.rglob("*.rego")):
            tree.update(f"{path.relative_to(policy_dir).as_posix()}\0{_read_text(path)}\0".encode())
        for sub in ("data", "cases"):
            for path in sorted((policy_dir / sub).glob("*.json")):
                tree.update(f"{sub}/{path.name}\0{_read_text(path)}\0".encode())
        lint_path = policy_dir / LINT_FILE
        lint = _read_text(lint_path) if lint_path.is_file() else ""
        tree.update(f"{LINT_FILE}\0{lint}\0".encode())
    except (OSError, PolicyLoadError) as exc:
        # A file removed between listing and reading: report a hash that never matches,
        # so the next poll looks again.
        return f"unreadable:{exc}"
    return "sha256:" + tree.hexdigest()


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(f"{path}: not UTF-8 text ({exc.reason})") from exc
