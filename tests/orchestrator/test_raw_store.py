"""The raw payload store (claim check): content-addressed, idempotent, private, and a
failure to keep a payload refuses the webhook instead of losing the finding."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path

import psycopg
import pytest
from conftest import free_port
from harness import api_client, make_settings, signed
from pgserver import fresh_database, needs_postgres
from temporalio.client import Client

from contracts.compact import FINDING_BYTES, size_of
from contracts.findings import Finding
from orchestrator.ingest.raw_store import FileRawStore, PostgresRawStore, RawStore, check_in

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/findings/suricata.json"


@pytest.fixture
def postgres_dsn(postgres_cluster_dsn: str) -> str:
    return fresh_database(postgres_cluster_dsn)


def stores(tmp_path: Path, dsn: str | None) -> list[RawStore]:
    found: list[RawStore] = [FileRawStore(tmp_path / "raw")]
    if dsn is not None:
        found.append(PostgresRawStore(dsn))
    return found


def roundtrip(store: RawStore) -> None:
    bodies = [b'{"a": 1}', b"\x00" * 1_048_576, b'{"a": 1}']
    refs = store.put_many(bodies)
    assert [r.sha256 for r in refs] == [hashlib.sha256(b).hexdigest() for b in bodies]
    assert [r.bytes for r in refs] == [8, 1_048_576, 8]
    for ref, body in zip(refs, bodies, strict=True):
        assert store.get(ref.sha256) == body
    assert store.get("0" * 64) is None
    assert store.get("../../etc/passwd") is None  # never a path, only a digest


def test_file_store_keeps_each_body_once_privately(tmp_path: Path):
    store = FileRawStore(tmp_path / "raw")
    roundtrip(store)
    files = [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]
    assert len(files) == 2  # the repeated body is stored once
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in files if p.name.startswith(".incoming-")]


@needs_postgres
def test_file_store_writes_again_after_a_retention_job_pruned_its_directories(tmp_path: Path):
    store = FileRawStore(tmp_path / "raw")
    (first,) = store.put_many([b"first"])
    shutil.rmtree(tmp_path / "raw")  # as `find raw -delete` would
    (again,) = store.put_many([b"first"])
    assert store.get(again.sha256) == b"first" and again == first


def test_postgres_store_keeps_each_body_once(postgres_dsn: str):
    roundtrip(PostgresRawStore(postgres_dsn))

    with psycopg.connect(postgres_dsn) as connection:
        (count,) = connection.execute("SELECT count(*) FROM bulkhead_raw").fetchone() or (0,)
    assert count == 2


def test_check_in_moves_the_payload_out_and_compacts(tmp_path: Path):
    document = json.loads(EXAMPLE.read_text())
    document["payload_printable"] = "GET /" + "A" * 900_000
    raw = json.dumps(document)
    found = Finding.model_validate(
        {
            "finding_info": {"uid": "det-raw", "title": "t" * 5000},
            "severity_id": 4,
            "time": 0,
            "metadata": {"product": {"name": "Suricata"}},
            "raw_data": raw,
        }
    )
    store = FileRawStore(tmp_path / "raw")
    (summary,) = check_in(store, [found])
    assert summary.raw_data is None
    assert summary.raw_ref is not None
    assert summary.raw_ref.bytes == len(raw.encode())
    assert store.get(summary.raw_ref.sha256) == raw.encode()
    assert size_of(summary) <= FINDING_BYTES
    assert summary.truncated == ["/finding_info/title"]


async def test_a_store_that_cannot_keep_the_payload_refuses_the_webhook(temporal_client: Client):
    settings = make_settings(free_port())
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    (settings.state_dir / "raw").write_text("not a directory")  # every write fails
    body = EXAMPLE.read_bytes()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    async with api_client(temporal_client, settings, None) as http:
        response = await http.post(
            "/v1/webhooks/suricata", content=body, headers=signed(body, secret)
        )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "raw payload store" in response.json()["detail"]
    assert "Retry-After" in response.headers


async def test_raw_payloads_are_read_by_digest_with_a_principal(temporal_client: Client):
    settings = make_settings(free_port())
    store = FileRawStore(settings.state_dir / "raw")
    (ref,) = store.put_many([b'{"posted": "as is"}'])
    async with api_client(temporal_client, settings, None) as http:
        found = await http.get(f"/v1/raw/{ref.sha256}")
        assert found.status_code == 200
        assert found.content == b'{"posted": "as is"}'
        assert found.headers["etag"] == f'"{ref.sha256}"'
        missing = await http.get(f"/v1/raw/{'0' * 64}")
        assert missing.status_code == 404
        assert missing.json()["detail"] == f"no raw payload with sha256 {'0' * 64}"
        malformed = await http.get("/v1/raw/not-a-digest")
        assert malformed.status_code == 422
    async with api_client(temporal_client, settings, None, anonymous=True) as http:
        assert (await http.get(f"/v1/raw/{ref.sha256}")).status_code == 401
