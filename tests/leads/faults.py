"""Ways for the database to fail, for the durability tests.

- :class:`TcpProxy`: PostgreSQL reached through a loopback proxy that can be taken down
  (every connection cut, new ones refused — what a stopped server looks like to a client),
  made unreachable (connections accepted, nothing answered — a black-holed network) and
  brought back.
- :func:`sqlite_faults`: SQLite's own errors on demand, per transaction: read-only ("attempt
  to write a readonly database", a volume gone read-only), full (``max_page_count``: SQLite's
  real "database or disk is full"), slow (a fixed delay per write).
- :func:`slow_writes`: every transaction takes ``seconds`` longer (both backends).
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.mode = "up"  # up | down | blackhole
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.accepted = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, base_url: str) -> str:
        """``base_url`` (postgresql+psycopg://user@127.0.0.1:PORT/db?...) through the proxy."""
        u = sa.make_url(base_url)
        return u.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "down":
                _reset(client)
                continue
            if self.mode == "blackhole":
                with self._lock:
                    self._socks.append(client)  # held open, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.mode != "up":
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            _reset(s)

    def _cut_all(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            _reset(s)

    def down(self) -> None:
        """Stopped: existing connections reset, new ones reset at once."""
        self.mode = "down"
        self._cut_all()

    def blackhole(self) -> None:
        """Unreachable: existing connections cut, new ones accepted and never answered."""
        self.mode = "blackhole"
        self._cut_all()

    def up(self) -> None:
        self._cut_all()  # black-holed sockets
        self.mode = "up"

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self._cut_all()


def _reset(s: socket.socket) -> None:
    # shutdown first: close() alone does not wake a pump thread blocked in recv() on this
    # socket (Linux keeps the file alive for the syscall), so the peer never saw the outage
    # and a store thread waited for an answer forever (a full `make test` hung on it).
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


@dataclass
class SqliteFaults:
    """Switches read whenever the engine hands out a connection (every write, any thread)."""

    readonly: bool = False
    full: bool = False
    delay_s: float = 0.0
    transactions: int = 0


def sqlite_faults(engine: sa.Engine) -> SqliteFaults:
    faults = SqliteFaults()

    # At checkout from the pool, before the store's BEGIN IMMEDIATE: pragmas outside any
    # transaction, as SQLite wants them.
    @sa.event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        faults.transactions += 1
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA query_only={int(faults.readonly)}")
        if faults.full:
            pages = cur.execute("PRAGMA page_count").fetchone()[0]
            cur.execute(f"PRAGMA max_page_count={pages}")
        else:
            cur.execute("PRAGMA max_page_count=1073741823")
        cur.close()
        if faults.delay_s:
            time.sleep(faults.delay_s)

    return faults


def slow_writes(engine: sa.Engine, seconds: float) -> dict[str, Any]:
    """Every commit waits ``seconds`` first (a database slow to make writes durable)."""
    state: dict[str, Any] = {"seconds": seconds, "commits": 0}

    @sa.event.listens_for(engine, "commit")
    def _on_commit(conn: sa.Connection) -> None:
        state["commits"] += 1
        if state["seconds"]:
            time.sleep(state["seconds"])

    return state
