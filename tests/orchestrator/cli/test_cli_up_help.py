"""`bulkhead up --help` says where the lab listens and what it names its namespaces, so a
port already taken or a namespace left over is found without reading the code (#19)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.config import Settings

BULKHEAD = str(Path(sys.executable).parent / "bulkhead")
LAB_PORTS = sorted(n for n in Settings.model_fields if n.startswith("lab_") and n.endswith("_port"))


def helped(*argv: str) -> str:
    done = subprocess.run(
        [BULKHEAD, *argv, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("argv", [("up",), ("lab", "up")])
def test_help_lists_every_lab_port_and_the_namespace_prefix_from_the_settings(argv):
    text = helped(*argv)
    defaults = Settings.model_fields
    assert len(LAB_PORTS) >= 6
    for name in LAB_PORTS:
        line = next((x for x in text.splitlines() if f"BULKHEAD_{name.upper()}" in x), "")
        assert f"port {defaults[name].default} " in line, (name, text)
    prefix = defaults["lab_netns_prefix"].default
    assert f"{prefix}gw (the gateway) and {prefix}<zone>" in text
    assert "BULKHEAD_LAB_NETNS_PREFIX" in text
    assert f"on {defaults['lab_host'].default} (BULKHEAD_LAB_HOST)" in text


def test_up_help_names_its_own_ports_too():
    text = helped("up")
    assert f"API port {Settings.model_fields['api_port'].default} (--api-port)" in text
    assert "Temporal 7233 (--temporal-port)" in text
