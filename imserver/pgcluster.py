"""A private PostgreSQL cluster built from the local Postgres binaries.

The demo launcher (``imdemo``) and the test suite need a database on machines that have the
Postgres binaries installed but no server running (or none they may touch).
This module creates a cluster in a folder of its own and serves it on a unix
socket only, so it never clashes with a system Postgres on TCP port 5432.

Postgres refuses to run as root; when this process is root, the cluster runs
as an unprivileged system user (``postgres`` if the distribution created it,
else ``imserver``). Durability is a core rule of the project, so fsync stays on.

Authentication is ``trust``: anyone who can reach the socket is superuser.
The socket directory is therefore mode 0700, reachable only by the cluster's
owner (and root).
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

__all__ = ["ClusterError", "PrivateCluster", "find_pg_bindir"]

DEFAULT_PORT = 5432
_FALLBACK_USER = "imserver"
_TAIL_LINES = 20


class ClusterError(RuntimeError):
    """The private cluster could not be found, created, started or stopped."""


def _version_key(bindir: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin``; unparsable versions sort first."""
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return ()


def find_pg_bindir() -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    ``pg_config`` may come from a client-only package (libpq-dev) whose bindir
    lacks the server, so each candidate must actually contain ``initdb``.
    """
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = ""
        if out and (Path(out) / "initdb").is_file():
            return Path(out)
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()]
    if debian:
        return max(debian, key=_version_key)
    initdb = shutil.which("initdb")
    if initdb is not None:
        # Follow symlinks such as /usr/local/bin/initdb to the real bindir with pg_ctl.
        return Path(initdb).resolve().parent
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install the "
        "Debian package 'postgresql' (apt-get install postgresql) or put initdb on PATH."
    )


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-_TAIL_LINES:])


def _unprivileged_user() -> str:
    """Pick the system user the cluster runs as when we are root, creating one if needed."""
    for name in ("postgres", _FALLBACK_USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             _FALLBACK_USER],
            capture_output=True, text=True, check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
        raise ClusterError(
            f"PostgreSQL refuses to run as root and creating the system user "
            f"{_FALLBACK_USER!r} failed: {detail}"
        ) from exc
    return _FALLBACK_USER


def _chown_tree(root: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid,
                     follow_symlinks=False)


class PrivateCluster:
    """A Postgres cluster living in ``data_dir``, served on a unix socket only.

    Layout: ``data_dir/pgdata`` (PGDATA), ``data_dir/run`` (socket directory),
    ``data_dir/postgres.log``. A server already running on the same PGDATA is
    reused and left running on :meth:`stop`; only a server this object started
    is stopped.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.run_dir = self.data_dir / "run"
        self.log_file = self.data_dir / "postgres.log"
        # The port only names the socket file; in a private directory 5432 cannot clash.
        self._port = DEFAULT_PORT if port is None else port
        self._host = self.run_dir
        self._bindir: Path | None = None
        self._user: str | None = None
        self._started = False

    @property
    def dsn(self) -> str:
        """asyncpg/libpq URI for the ``postgres`` database (accurate once started)."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """asyncpg/libpq URI for ``dbname``; the socket directory goes in ``host``."""
        host = quote(str(self._host), safe="/")
        return f"postgresql://postgres@/{quote(dbname, safe='')}?host={host}&port={self._port}"

    def start(self) -> str:
        """Create the cluster if needed, start it unless already running, return the DSN."""
        if self._started:
            return self.dsn
        bindir = self._bindir = find_pg_bindir()
        self._user = _unprivileged_user() if os.geteuid() == 0 else None
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.run_dir.mkdir(mode=0o700, exist_ok=True)
        self.run_dir.chmod(0o700)
        if self._user is not None:
            _chown_tree(self.data_dir, self._user)
            self._check_reachable()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bindir)
        if self._running(bindir):
            self._adopt_running_server()
            return self.dsn
        options = " ".join([
            "-c listen_addresses=''",
            f"-c unix_socket_directories={shlex.quote(str(self.run_dir))}",
            f"-c port={self._port}",
        ])
        proc = self._run([str(bindir / "pg_ctl"), "-D", str(self.pgdata), "-l",
                          str(self.log_file), "-w", "-o", options, "start"])
        if proc.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise ClusterError(
                f"pg_ctl start failed (exit {proc.returncode}) for {self.pgdata}:\n"
                f"{_tail(proc.stdout + proc.stderr)}\n--- {self.log_file} ---\n{_tail(log)}"
            )
        self._host = self.run_dir
        self._started = True
        return self.dsn

    def stop(self) -> None:
        """Stop the server (fast shutdown, waiting for it) if this object started it."""
        if not self._started or self._bindir is None:
            return
        proc = self._run([str(self._bindir / "pg_ctl"), "-D", str(self.pgdata),
                          "stop", "-m", "fast", "-w"])
        if proc.returncode != 0:
            raise ClusterError(
                f"pg_ctl stop failed (exit {proc.returncode}) for {self.pgdata}:\n"
                f"{_tail(proc.stdout + proc.stderr)}"
            )
        self._started = False

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _as_user(self, argv: list[str]) -> list[str]:
        """Wrap ``argv`` to run as the unprivileged user when we are root."""
        if self._user is None:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", self._user, "--", *argv]
        if shutil.which("setpriv"):
            gid = pwd.getpwnam(self._user).pw_gid
            return ["setpriv", f"--reuid={self._user}", f"--regid={gid}", "--init-groups",
                    "--", *argv]
        # The fallback user's shell is nologin, so name a real shell for su.
        return ["su", "-s", "/bin/sh", self._user, "-c", shlex.join(argv)]

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        # cwd "/" because the unprivileged user may not be able to enter ours (e.g. /root).
        return subprocess.run(
            self._as_user(argv), cwd="/", stdin=subprocess.DEVNULL,
            capture_output=True, text=True, errors="replace", check=False,
        )

    def _check_reachable(self) -> None:
        if self._run(["test", "-w", str(self.data_dir)]).returncode != 0:
            raise ClusterError(
                f"PostgreSQL refuses to run as root, so the private cluster runs as user "
                f"{self._user!r}, who cannot reach {self.data_dir} (every parent directory "
                f"must be traversable). Set IMSERVER_DATA to a directory that user can "
                f"reach, e.g. /var/lib/imserver."
            )

    def _initdb(self, bindir: Path) -> None:
        """Create PGDATA; C.UTF-8 gives Unicode-aware case mapping, plain C is the fallback."""
        base = [str(bindir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8"]
        proc = self._run([*base, "--locale=C.UTF-8"])
        if proc.returncode != 0 and "locale" in (proc.stdout + proc.stderr).lower():
            proc = self._run([*base, "--no-locale"])
        if proc.returncode != 0:
            raise ClusterError(
                f"initdb failed (exit {proc.returncode}) for {self.pgdata}:\n"
                f"{_tail(proc.stdout + proc.stderr)}"
            )

    def _running(self, bindir: Path) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        proc = self._run([str(bindir / "pg_ctl"), "-D", str(self.pgdata), "status"])
        return proc.returncode == 0

    def _adopt_running_server(self) -> None:
        """Point the DSN at the running server's own port and socket directory.

        postmaster.pid line 4 is the port and line 5 the first socket directory;
        the server may have been started with a different ``port`` than ours.
        """
        lines = (self.pgdata / "postmaster.pid").read_text(errors="replace").splitlines()
        if len(lines) >= 5 and lines[3].strip().isdigit() and lines[4].strip():
            self._port = int(lines[3])
            self._host = Path(lines[4].strip())
