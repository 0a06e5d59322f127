"""A real PostgreSQL server for the tests: its own cluster in a temporary folder, on a free loopback port.

The server binaries come from ``$PG_BINDIR``, ``pg_config --bindir`` or the Debian layout
(``/usr/lib/postgresql/<version>/bin``, the newest); ``.ci/run`` installs the Debian package. PostgreSQL
refuses to run as root, so as root the cluster's folder is handed to the unprivileged ``postgres``
user and every server command runs as that user (``runuser``); otherwise as the current user. When
the server cannot start, :class:`PostgresUnavailable` says why and the tests that need it fail: a
missing server is never a skipped test.

Clients log in over TCP with a password (scram-sha-256), as a deployment does, so the password
handling of the store is exercised for real. Each test gets its own database, made cheaply by
``CREATE DATABASE … TEMPLATE`` from one database migrated once per session.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

#: The superuser the tests connect as.
SUPERUSER = "orchestrator_test"
#: How long the server may take to start or stop (seconds).
START_TIMEOUT = 60


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server did not start."""


def find_bindir() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name), reverse=True)
    candidates.extend(debian)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) found in $PG_BINDIR, `pg_config --bindir` or "
        "/usr/lib/postgresql/*/bin: install them (Debian: apt-get install postgresql)"
    )


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running cluster: where it listens and how to log in."""

    port: int
    password: str
    data: Path  #: the cluster's data directory

    def server_pids(self) -> list[int]:
        """The postmaster and its children (backends, writers): for measuring the server's CPU."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == postmaster:
                pids.append(int(stat.parent.name))
        return pids

    def url(self, database: str, *, with_password: bool = True) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3 driver)."""
        secret = f":{self.password}" if with_password else ""
        return f"postgresql+psycopg://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A plain autocommit psycopg connection (for CREATE/DROP DATABASE and checks)."""
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password,
                               dbname=database, autocommit=True)

    def create_database(self, name: str, template: str | None = None) -> None:
        """A new database, copied from ``template`` when given (a file copy: milliseconds)."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(statement)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending any connection a test left open to it."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class _Cluster:
    """initdb, start and stop of one throw-away cluster."""

    def __init__(self, root: Path, bindir: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.bindir = bindir
        self.log = root / "server.log"
        self._as_postgres = os.geteuid() == 0

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command: Sequence[str] = [str(self.bindir / argv[0]), *argv[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=START_TIMEOUT,
                              cwd=self.root)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(f"{what} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")

    def initdb(self, password: str) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if self._as_postgres:
            self.root.chmod(0o700)
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        result = self.run("initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                          "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
        pwfile.unlink()
        self._check(result, "initdb")

    def start(self, port: int, *, durable: bool) -> None:
        # Durability is the deployment's business, not the tests': no fsync makes a test database cheap.
        # A benchmark asks for a durable server (PostgreSQL's defaults), as SQLite's writer is.
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{self.root}'"
                   " -c max_connections=200")
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._check(self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                             "-w", "-t", str(START_TIMEOUT), "start"), "pg_ctl start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A fresh cluster on a free port for the duration of the block; stopped and deleted afterwards.

    ``durable`` keeps PostgreSQL's fsync'ed commits (for benchmarks); tests run without them.
    """
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    cluster = _Cluster(root, bindir)
    password = secrets.token_urlsafe(16)
    try:
        cluster.initdb(password)
        for attempt in range(3):  # the free port may be taken between the probe and the start
            port = free_port()
            try:
                cluster.start(port, durable=durable)
                break
            except PostgresUnavailable:
                if attempt == 2:
                    raise
        yield PostgresServer(port=port, password=password, data=cluster.data)
    finally:
        if cluster.data.exists():
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
