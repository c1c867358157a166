"""`--lease-s` takes durations people write (90s, 15m, 1h, 1h30m) as well as seconds."""

from __future__ import annotations

import pytest

from orchestrator.cli.durations import parse_seconds
from orchestrator.cli.main import build_parser, main


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3600", 3600),
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1d2h3m4s", 93784),
        ("90m", 5400),  # a unit need not roll over into the next
        (" 1H ", 3600),  # shells and fingers add spaces and capitals
    ],
)
def test_accepted_forms_give_seconds(text, seconds):
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "h", "1.5h", "-600", "30m1h", "1h1h", "1 h", "1w", "soon", "١٢", "1hour"],
)
def test_other_text_is_refused_naming_the_accepted_forms(text):
    with pytest.raises(ValueError, match=r"90s, 15m, 1h, 1h30m"):
        parse_seconds(text)


@pytest.mark.parametrize("text", ["0", "0s", "0h0m"])
def test_a_zero_duration_is_refused(text):
    with pytest.raises(ValueError, match="more than 0"):
        parse_seconds(text)


@pytest.mark.parametrize("flag", ["--lease-s", "--lease"])
def test_extend_parses_the_lease_flag_into_seconds(flag):
    args = build_parser().parse_args(["extend", "inc-1", "step-a", flag, "1h30m"])
    assert args.lease_s == 5400


def test_a_bad_lease_is_a_usage_error_naming_the_accepted_forms(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["extend", "inc-1", "step-a", "--lease-s", "-600", "--reason", "x"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --lease-s/--lease: invalid duration '-600'" in err
    assert "1h30m" in err
    assert "Traceback" not in err
