"""Lifecycle tests for the private Postgres cluster used by the demo and the test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imserver.pgcluster import ClusterError, PrivateCluster, find_pg_bindir

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A fresh folder under /var/tmp.

    pytest's tmp_path may sit under a mode-0700 /tmp/pytest-of-root, which the
    unprivileged user Postgres runs as (when we are root) cannot traverse.
    """
    path = Path(tempfile.mkdtemp(prefix="imserver-pgcluster-", dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _psql(dsn: str, sql: str) -> str:
    bundled = find_pg_bindir() / "psql"
    exe = str(bundled) if bundled.is_file() else shutil.which("psql")
    assert exe is not None, "psql not found"
    proc = subprocess.run(
        [exe, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_data_persists_across_restart(cluster_dir: Path) -> None:
    with PrivateCluster(cluster_dir) as dsn:
        assert _psql(dsn, "select 1") == "1"
        assert _psql(dsn, "show fsync") == "on"
        assert _psql(dsn, "show listen_addresses") == ""
        _psql(dsn, "create table notes (body text); insert into notes values ('kept')")
    assert not (cluster_dir / "pgdata" / "postmaster.pid").exists()

    with PrivateCluster(cluster_dir) as dsn:
        assert _psql(dsn, "select body from notes") == "kept"
    assert not (cluster_dir / "pgdata" / "postmaster.pid").exists()


def test_second_cluster_reuses_running_server(cluster_dir: Path) -> None:
    with PrivateCluster(cluster_dir, port=5499) as dsn:
        second = PrivateCluster(cluster_dir)
        assert second.start() == dsn  # adopts the running server's port, not 5432
        assert second.dsn_for("postgres") == dsn
        second.stop()  # not ours: must leave the server running
        assert _psql(dsn, "select 1") == "1"
    assert not (cluster_dir / "pgdata" / "postmaster.pid").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the reachability check applies only to root")
def test_unreachable_dir_is_explained(cluster_dir: Path) -> None:
    cluster_dir.chmod(0o700)  # root-owned and closed: the unprivileged user cannot enter
    with pytest.raises(ClusterError, match="IMSERVER_DATA"):
        PrivateCluster(cluster_dir / "db").start()
