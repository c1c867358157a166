"""A throwaway PostgreSQL cluster on 127.0.0.1 from Debian's `postgresql` package.

initdb refuses to run as root, so as root the cluster belongs to the `postgres` user the
package creates; its socket and data live in a temp dir removed on stop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_BIN = Path("/usr/lib/postgresql")


def pg_bin_dir() -> Path | None:
    versions = sorted(PG_BIN.glob("*/bin/initdb")) if PG_BIN.is_dir() else []
    return versions[-1].parent if versions else None


# A test that needs the real PostgreSQL (conftest turns this skip into a failure in CI).
needs_postgres = pytest.mark.skipif(
    pg_bin_dir() is None, reason="PostgreSQL is not installed (.ci/run installs `postgresql`)"
)


def fresh_database(cluster_dsn: str) -> str:
    """A DSN for a new, empty database in the throwaway cluster: each test's tables start
    empty (`verify --postgres` reads the whole audit table as one trail, say)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster_dsn, autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{cluster_dsn.rpartition('/')[0]}/{name}"


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_cluster(port: int) -> Iterator[str]:
    """Yield a DSN for a fresh cluster (database `postgres`, user `bulkhead`, trust auth)."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (Debian package `postgresql`)")
    root = Path(tempfile.mkdtemp(prefix="bulkhead-pg-"))
    data = root / "data"
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "bulkhead"]
    subprocess.run(_as_owner(initdb), check=True, capture_output=True, timeout=60)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
    start = [*ctl, "-o", options, "-w", "start"]
    subprocess.run(_as_owner(start), check=True, capture_output=True, timeout=60)
    try:
        yield f"postgresql://bulkhead@127.0.0.1:{port}/postgres"
    finally:
        stop = [*ctl, "-m", "immediate", "stop"]
        subprocess.run(_as_owner(stop), check=False, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
