"""A private PostgreSQL cluster with logical decoding, owned by the ``postgres`` OS user when we run as root."""

from __future__ import annotations

import logging
import os
import pwd
import stat
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from cdc_pipeline.waiting import wait_until
from devstack import process
from devstack.errors import PartStartError
from devstack.part import Part

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent.parent / "include" / "demo"
CAPTURE_ROLE_SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "postgres" / "05-capture-role.sh"
DEMO_SQL = (DEMO_DIR / "clientes.sql", DEMO_DIR / "tienda.sql")  # the demo connectors' tables
OS_USER = "postgres"  # initdb refuses to run as root
REPLICATION_SLOTS = 30
# TCP asks for the password (scram-sha-256): the pipeline, Kafka Connect and the tests all send it. The Unix
# socket, in the stack's own folder and open to its owner only (unix_socket_permissions=0700), stays trusted:
# the launcher sets the recorded password through it, whatever the cluster had before.
PG_HBA = """# Written by devstack/postgres.py on every start.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
"""


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL server's bin folder (Debian keeps them under /usr/lib/postgresql)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not candidates:
        raise PartStartError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                             "run scripts/bootstrap.sh (it installs the Debian package postgresql)")
    return candidates[-1].parent


def _database_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


class PostgresPart(Part):
    name = "postgres"
    port_env = "CDC_PG_PORT"
    port_field = "pg_port"
    marker = "postgres"
    other = "another PostgreSQL (the Debian cluster uses 5432)"
    start_timeout = 60.0
    stop_timeout = 30.0
    launch_grace = 15.0

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a PostgreSQL tool, as the postgres OS user when we are root."""
        extra = {"user": OS_USER, "group": OS_USER, "extra_groups": []} if self._as_root else {}
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        if self._as_root:
            env["HOME"] = pwd.getpwnam(OS_USER).pw_dir
        return subprocess.run(argv, cwd="/", env=env, capture_output=True, text=True, **extra, **kwargs)

    def pid(self) -> int | None:
        # The postmaster's own pid file; pg_ctl does the daemonizing.
        return process.running_pid(self.settings.pgdata / "postmaster.pid", self.marker)

    def prepare(self) -> None:
        settings = self.settings
        for folder in (settings.stack_home, settings.pgdata, settings.pg_socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if self._as_root:
            self._make_reachable(settings.pgdata)
            uid, gid = pwd.getpwnam(OS_USER).pw_uid, pwd.getpwnam(OS_USER).pw_gid
            for path in (settings.pgdata, settings.pg_socket_dir, self.log_path):
                os.chown(path, uid, gid)
            settings.pgdata.chmod(0o700)
        if not (settings.pgdata / "PG_VERSION").exists():
            log.info("initdb %s", settings.pgdata)
            result = self._run([str(postgres_bin_dir() / "initdb"), "-D", str(settings.pgdata),
                                "-U", settings.pg_user, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
            if result.returncode != 0:
                raise PartStartError(f"initdb failed for {settings.pgdata} (exit {result.returncode}):\n"
                                     f"{result.stdout}{result.stderr}")
        # Also on a cluster made before TCP asked for passwords: it asks from this start on.
        hba = settings.pgdata / "pg_hba.conf"
        hba.write_text(PG_HBA)
        if self._as_root:
            os.chown(hba, pwd.getpwnam(OS_USER).pw_uid, pwd.getpwnam(OS_USER).pw_gid)

    def _make_reachable(self, pgdata: Path) -> None:
        """The postgres user must traverse every folder above pgdata; add o+x to the ones we own that lack it.

        Temporary folders (pytest's, mkdtemp's) are 0700, which would make the cluster fail to start.
        """
        for folder in reversed(pgdata.parents):
            info = folder.stat()
            if info.st_mode & stat.S_IXOTH:
                continue
            if info.st_uid == os.geteuid():
                folder.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
                log.info("added o+x to %s so the postgres user can reach %s", folder, pgdata)
        probe = self._run(["test", "-x", str(pgdata.parent)])
        if probe.returncode != 0:
            raise PartStartError(f"the postgres OS user cannot reach {pgdata.parent}: a folder above it is not "
                                 f"traversable by others. Set CDC_STACK_HOME to a folder under /work or /tmp "
                                 f"that others can traverse (chmod o+x)")

    def launch(self) -> None:
        settings = self.settings
        # 30 replication slots (and senders), not 10: the test session registers a connector, each with its own
        # slot, per scenario, and slots outlive their connectors (slot.drop.on.stop=false).
        options = (f"-p {settings.pg_port} -c wal_level=logical -c listen_addresses=127.0.0.1 "
                   f"-c max_replication_slots={REPLICATION_SLOTS} -c max_wal_senders={REPLICATION_SLOTS} "
                   f"-c password_encryption=scram-sha-256 -c unix_socket_permissions=0700 "
                   f"-k {settings.pg_socket_dir}")
        result = self._run([str(postgres_bin_dir() / "pg_ctl"), "-D", str(settings.pgdata), "-l",
                            str(self.log_path), "-o", options, "-W", "start"])
        if result.returncode != 0:
            raise PartStartError(f"pg_ctl start failed (exit {result.returncode}): {result.stdout}{result.stderr}"
                                 f"\n--- last lines of {self.log_path} ---\n{process.log_tail(self.log_path)}")

    def stuck(self, failure: str) -> str | None:
        if "shutting down" in failure:
            # A smart shutdown (plain kill, pg_ctl stop -m smart) waits for every client, and Debezium's replication
            # connections never leave by themselves.
            return ("A shutdown is waiting for its clients to disconnect (Kafka Connect's Debezium tasks keep theirs "
                    "open): run ./stack stop postgres (a fast shutdown, which ends them), then ./stack start postgres")
        return None

    def _connect(self, dbname: str) -> psycopg.Connection:
        """Through the cluster's own socket (trusted, owner only): the launcher sets the password it then asks for."""
        s = self.settings
        return psycopg.connect(host=str(s.pg_socket_dir), port=s.pg_port, dbname=dbname, user=s.pg_user,
                               connect_timeout=3, autocommit=True)

    def probe(self) -> str:
        s = self.settings
        with self._connect("postgres") as conn:
            wal_level = conn.execute("SHOW wal_level").fetchone()[0]
            present = {db: _database_exists(conn, db) for db in (s.pg_db, s.sink_db)}
        if wal_level != "logical":
            raise PartStartError(f"wal_level={wal_level} on port {s.pg_port}: this is not our "
                                 f"cluster (ours runs with wal_level=logical)")
        return f"wal_level={wal_level}; " + ", ".join(
            f"database {db} {'present' if ok else 'MISSING'}" for db, ok in present.items())

    def after_ready(self) -> None:
        """Set the recorded password on CDC_PG_USER, create CDC_PG_DB (seeded with the demo table) and
        CDC_SINK_DB when missing, and the capture role (CDC_CAPTURE_USER) with its grants. Safe to run on every
        start: an existing database is never seeded again."""
        s = self.settings
        with self._connect("postgres") as conn:
            # TCP asks for this password (scram-sha-256): set it, hashed so, on every start.
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(s.pg_user),
                                                                     sql.Literal(s.pg_password)))
            if not _database_exists(conn, s.pg_db):
                self._create_seeded(conn, s.pg_db)
            if not _database_exists(conn, s.sink_db):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.sink_db)))
                log.info("created the sink database %s", s.sink_db)
        # template1 too: a database created later (a test's, a second source) is a copy of it, default privileges
        # and schema grants included, so the role reads its tables as well.
        for database in (s.pg_db, "template1"):
            self._grant_capture_role(database)

    def _grant_capture_role(self, database: str) -> None:
        """The pipeline's and Debezium's least-privilege role, by the script docker-compose.yml's postgres image
        runs too (one home for the grants), over TCP as the administrator."""
        s = self.settings
        env = {**os.environ, "PATH": f"{postgres_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
               "PGHOST": "127.0.0.1", "PGPORT": str(s.pg_port), "PGPASSWORD": s.pg_password,
               "POSTGRES_USER": s.pg_user, "POSTGRES_DB": database,
               "CDC_CAPTURE_USER": s.capture_user, "CDC_CAPTURE_PASSWORD": s.capture_password}
        result = subprocess.run(["sh", str(CAPTURE_ROLE_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise PartStartError(f"{CAPTURE_ROLE_SCRIPT.name} failed to set up the role {s.capture_user}: "
                                 f"{(result.stderr or result.stdout).strip()}")

    def _create_seeded(self, conn: psycopg.Connection, db: str) -> None:
        """Create ``db`` with the demo table: built aside under a temporary name and renamed when complete,
        so a crash half-way leaves no half-seeded database that a later start would take as existing."""
        aside = f"{db[:50]}__cdc_seeding"
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(aside)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(aside)))
        with self._connect(aside) as seeding:
            for script in DEMO_SQL:
                seeding.execute(script.read_text())
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(aside), sql.Identifier(db)))
        log.info("created database %s with the demo tables (%s)", db, ", ".join(p.name for p in DEMO_SQL))

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        log.info("stopping postgres (pid %s)", pid)
        result = self._run([str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.settings.pgdata), "-m", "fast",
                            "-t", str(int(self.stop_timeout)), "-w", "stop"])
        if result.returncode != 0 and process.is_alive(pid):
            log.warning("pg_ctl stop failed (%s): %s; signalling pid %s", result.returncode, result.stderr, pid)
            process.stop_process(pid, timeout=10)
        # pg_ctl returns once the postmaster removed its pid file, a moment before the process has exited.
        wait_until(lambda: not process.is_alive(pid), what=f"postgres (pid {pid}) to exit", timeout=10, interval=0.05)
        return True
