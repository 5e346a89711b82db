"""Store fixtures: SQLite in a temp dir, and a throwaway real PostgreSQL for the session.

The PostgreSQL server is Debian's (scripts/install-system-deps.sh installs it): initdb into
a temp dir, started on a free loopback port, stopped and removed after the session. As root
the server must run as the `postgres` user, so the temp dir is handed to it.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from leads.store import Store


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Base URL (no database) of a running throwaway PostgreSQL."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries absent (/usr/lib/postgresql/*/bin); "
                    "scripts/install-system-deps.sh installs the postgresql package")
    root = Path(tempfile.mkdtemp(prefix="agentlocator-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = load_agent_server().free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, cwd=root, capture_output=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--no-sync")
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')}") from exc
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       cwd=root, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_db(postgres_server: str) -> Iterator[str]:
    url = f"{postgres_server}/agentlocator_test"
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE agentlocator_test"))
    admin.dispose()
    yield url


@pytest.fixture
def postgres_url(postgres_db: str) -> Iterator[str]:
    """A fresh, empty schema (first on the search_path) in the session's database: much
    cheaper than a database per test, and just as isolated for the store."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_db, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{postgres_db}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'agentlocator.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    try:
        yield s
    finally:
        s.close()


class FakeTwilio:
    """A real HTTP server on 127.0.0.1 playing api.twilio.com's Messages endpoint (and any
    webhook receiver): answers from a script of (status, json) and records every request."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        self.requests: list[dict] = []
        self.script: list[tuple[int, dict]] = []
        self.default: tuple[int, dict] = (201, {})
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake._lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    n = len(fake.requests)
                    status, payload = fake.script.pop(0) if fake.script else fake.default
                if status < 300 and "/Messages.json" in self.path:
                    payload = {"sid": f"SM{n:032d}", "status": "queued", **payload}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def messages(self) -> list[dict]:
        from urllib.parse import parse_qs

        return [
            {k: v[0] for k, v in parse_qs(r["body"].decode()).items()} | {"_auth": r["headers"].get("Authorization")}
            for r in self.requests if r["path"].endswith("/Messages.json")
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    try:
        yield fake
    finally:
        fake.close()



def load_agent_server():  # type: ignore[no-untyped-def]
    """tests/leads/agent_server.py as a module (the process harness + caller helpers)."""
    import importlib.util
    import sys

    name = "agentlocator_tests_agent_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("agent_server.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def agent_server_mod():  # type: ignore[no-untyped-def]
    return load_agent_server()
