"""`bulkhead principals`: tokens shown once, stored only as hashes, checked on every call."""

from __future__ import annotations

import stat
from pathlib import Path

from orchestrator.cli.main import main
from orchestrator.responders.principals import PrincipalStore


def test_add_prints_a_token_once_and_stores_only_its_hash(tmp_path: Path, capsys):
    assert (
        main(
            [
                "principals",
                "add",
                "alice",
                "--role",
                "responder",
                "--role",
                "duty-officer",
                "--state-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    stored = (tmp_path / "principals.json").read_text()
    assert token.startswith("bh_")
    assert token not in stored
    assert stat.S_IMODE((tmp_path / "principals.json").stat().st_mode) == 0o600
    principal = PrincipalStore(tmp_path / "principals.json").authenticate(token)
    assert principal is not None
    assert principal.name == "alice"
    assert principal.roles == ["responder", "duty-officer"]


def test_ls_and_rm_revoke_the_token(tmp_path: Path, capsys):
    store = PrincipalStore(tmp_path / "principals.json")
    token = store.add("bob", ["responder"])
    assert main(["principals", "ls", "--state-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "bob" in listing and token not in listing
    assert main(["principals", "rm", "bob", "--state-dir", str(tmp_path)]) == 0
    assert store.authenticate(token) is None, "another process' removal is seen at once"


def test_bad_requests_are_refused_with_a_reason(tmp_path: Path, capsys):
    store = PrincipalStore(tmp_path / "principals.json")
    store.add("carol", ["viewer"])
    assert (
        main(["principals", "add", "carol", "--role", "viewer", "--state-dir", str(tmp_path)]) == 2
    )
    assert "exists" in capsys.readouterr().err
    assert (
        main(["principals", "add", "bad name", "--role", "viewer", "--state-dir", str(tmp_path)])
        == 2
    )
    assert "invalid name" in capsys.readouterr().err
    assert main(["principals", "rm", "nobody", "--state-dir", str(tmp_path)]) == 2


def test_unknown_token_is_not_a_principal(tmp_path: Path):
    store = PrincipalStore(tmp_path / "principals.json")
    store.add("dora", ["duty-officer"])
    assert store.authenticate("bh_not-a-real-token") is None
