"""Fixtures of the policy tests that edit a copy of the policies or call the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator import logs
from orchestrator.config import DEFAULT_POLICY_DIR
from orchestrator.policy import schemas


@pytest.fixture(autouse=True)
def _keep_logging_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() configures structlog to print to the sys.stderr of the moment, which is the
    calling test's capture; later tests would log into a closed stream."""
    monkeypatch.setattr(logs, "configure", lambda level="info", **_: None)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    """A copy to edit; its schemas regenerated, so only the edit under test can fail it."""
    copy = Path(shutil.copytree(DEFAULT_POLICY_DIR, tmp_path / "policies"))
    schemas.write(copy / "schemas")
    return copy
