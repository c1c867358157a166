"""The CLI's error paths: one line on stderr, a documented exit code, never a traceback.

Which token each command sends, and what success prints.
The API side is tests/cli_canned.py: real problem+json from Bulkhead's own handlers.
"""

from __future__ import annotations

import pytest
from cli_canned import READS, STEP, WRITES, against, run

from orchestrator.cli import client
from orchestrator.config import Settings
from orchestrator.responders.operator import ensure_operator, operator_token

# --- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", WRITES)
def test_a_write_without_a_token_exits_2_and_points_at_principals_add(api, tmp_path, capsys, argv):
    code, _, err = run(capsys, *against(api, tmp_path, *argv, bearer=None))
    assert code == client.EXIT_USAGE == 2
    assert len(err) == 1
    assert err[0].startswith("error: no token to ")
    assert "`bulkhead principals add" in err[0]
    assert api.seen == []


@pytest.mark.parametrize("argv", READS)
def test_a_read_without_any_token_exits_2_and_points_at_bulkhead_up(api, tmp_path, capsys, argv):
    code, _, err = run(capsys, *against(api, tmp_path, *argv, bearer=None))
    assert code == client.EXIT_USAGE
    assert len(err) == 1
    assert "BULKHEAD_TOKEN" in err[0]
    assert f"bulkhead up --state-dir {tmp_path}" in err[0]
    assert api.seen == []


@pytest.mark.parametrize("argv", WRITES)
def test_writes_never_use_the_local_operator_credential(api, tmp_path, capsys, argv):
    ensure_operator(Settings(state_dir=tmp_path))
    code, _, err = run(capsys, *against(api, tmp_path, *argv, bearer=None))
    assert code == client.EXIT_USAGE
    assert "the local operator credential only reads" in err[0]
    assert api.seen == [], "the viewer token was never sent"


@pytest.mark.parametrize("token", ["bh_caf\u00e9", "bh_two words", "bh_a\nb"])
def test_a_token_no_header_can_carry_is_a_usage_error_that_does_not_echo_it(
    api, tmp_path, capsys, monkeypatch, token
):
    monkeypatch.setenv("BULKHEAD_TOKEN", token)
    code, _, err = run(capsys, *against(api, tmp_path, "incidents", "ls", bearer=None))
    assert code == client.EXIT_USAGE
    assert err == [
        "error: the token from BULKHEAD_TOKEN or `token` setting is not a bearer token "
        "(RFC 6750: letters, digits and -._~+/ only); was it pasted with a space or a line break?"
    ]
    assert api.seen == []


def test_whitespace_around_a_token_is_not_part_of_it(api, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BULKHEAD_TOKEN", "  bh_abc\n")
    assert run(capsys, *against(api, tmp_path, "incidents", "ls", bearer=None))[0] == 0
    assert api.seen[0].authorization == "Bearer bh_abc"


@pytest.mark.parametrize("argv", READS)
def test_reads_fall_back_to_the_local_operator_credential(api, tmp_path, capsys, argv):
    settings = Settings(state_dir=tmp_path)
    ensure_operator(settings)
    code, _, _ = run(capsys, *against(api, tmp_path, *argv, bearer=None))
    assert code == 0
    assert [s.authorization for s in api.seen] == [f"Bearer {operator_token(settings)}"]


@pytest.mark.parametrize("argv", READS + WRITES)
def test_the_token_flag_beats_the_environment_which_beats_the_operator_credential(
    api, tmp_path, capsys, monkeypatch, argv
):
    ensure_operator(Settings(state_dir=tmp_path))
    api.default = STEP
    monkeypatch.setenv("BULKHEAD_TOKEN", "from-env")
    assert run(capsys, *against(api, tmp_path, *argv, bearer="from-flag"))[0] == 0
    first = len(api.seen)  # a release reads its preview first: two requests per run
    assert run(capsys, *against(api, tmp_path, *argv, bearer=None))[0] == 0
    assert {s.authorization for s in api.seen[:first]} == {"Bearer from-flag"}
    assert {s.authorization for s in api.seen[first:]} == {"Bearer from-env"}


@pytest.mark.parametrize("argv", [READS[0], WRITES[0]])
def test_the_token_setting_of_the_config_file_is_used(api, tmp_path, capsys, argv):
    ensure_operator(Settings(state_dir=tmp_path))
    config = tmp_path / "bulkhead.toml"
    config.write_text('token = "from-toml"\n')
    api.default = STEP
    code, _, _ = run(capsys, *against(api, tmp_path, *argv, "--config", str(config), bearer=None))
    assert code == 0
    assert [s.authorization for s in api.seen] == ["Bearer from-toml"]


# --- success still prints what it did ---------------------------------------------------------


def test_extend_sends_the_duration_in_seconds_and_prints_the_step(api, tmp_path, capsys):
    api.default = STEP
    argv = ("extend", "inc-1", "a", "--lease-s", "1h30m", "--reason", "vendor visit")
    code, out, err = run(capsys, *against(api, tmp_path, *argv))
    assert (code, err) == (0, [])
    assert "tsc-0001" in out
    assert b'"lease_s":5400' in api.seen[0].body


def test_show_prints_the_incident_read_with_the_token(api, tmp_path, capsys):
    code, out, err = run(capsys, *against(api, tmp_path, "incidents", "show", "inc-1"))
    assert (code, err) == (0, [])
    assert "inc-1" in out
    assert api.seen[0].authorization == "Bearer tok"


def test_field_errors_read_fastapis_own_loc_and_msg_shape_too():
    errors = [{"loc": ["body", "lease_s"], "msg": "Input should be greater than 0"}, "junk"]
    assert client.field_errors(errors) == ["/body/lease_s: Input should be greater than 0"]
