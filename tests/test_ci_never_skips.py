"""Under CI=true a skipped test fails, except one marked `allowed_skip` (a real OPA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
CONFTEST = Path(__file__).with_name("conftest.py")
TESTS = """
import pytest

def test_needs_a_missing_server():
    pytest.skip("needs slapd")

@pytest.mark.skipif(True, reason="needs nft")
def test_needs_nft():
    pass

@pytest.mark.allowed_skip
def test_needs_opa():
    pytest.skip("no opa binary")
"""
INI = """
[pytest]
markers =
    allowed_skip: may skip under CI
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # The conftest imports helpers beside it (tests/pgserver.py, tests/grant_signing.py).
    here = str(Path(__file__).parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini(INI)
    pytester.makepyfile(test_real=TESTS)
    return pytester


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_skip_is_a_failure_under_ci(project: pytest.Pytester, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    # A skip at setup (a skipif marker) is reported as an error, one in the test as a failure.
    result.assert_outcomes(failed=1, errors=1, skipped=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*skipped under CI=true*needs slapd*"])
    result.stdout.fnmatch_lines(["*skipped under CI=true*needs nft*"])


def test_outside_ci_a_missing_dependency_only_skips(project: pytest.Pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    project.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(skipped=3)
