"""Server instances on one database: each has an id and a lease row it renews every few seconds.

Several AgentLocator servers (or ``--workers`` processes) may share one database. A call row
names its owner (``calls.owner``), the instance whose websocket carries it; an outbox item in
``sending`` names the instance sending it (``outbox.claimed_by``). When an instance dies, its
lease stops being renewed; once it has expired, any other instance closes the dead one's open
calls (``server_restart``: their held follow-ups become due) and hands its half-sent outbox
items back. A live instance's calls are never touched, however quiet they are.

Dead means, for an instance other than this one:

- its lease row is gone (it closed cleanly, or another instance already recovered it), or
- its lease expired (``expires_at`` before the database's clock) — judged only by an instance
  whose own lease has been renewed without a failure for a whole lease period: after a
  database outage every lease looks expired, and every instance first gets a chance to renew, or
- on SQLite only (one host by construction): it ran on this very host (same hostname, boot and
  pid namespace) and its process is gone (the pid is free, a zombie, or another process's).
  A restarted server recovers at once, as before leases, while ``--workers`` siblings on the
  same file stay untouched.

PostgreSQL's clock decides expiry (``now()``), so instances on different machines need not
agree on the time. Everything here is blocking (run it in the store's worker threads).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from leads import schema

DEFAULT_LEASE_S = 15.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_instance_id() -> str:
    """``<host>-<pid>-<random>``: readable in the dashboard and the logs, unique per start."""
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def host_key() -> str:
    """Where a pid means this process table: hostname, boot id and pid namespace."""
    try:
        pidns = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        pidns = ""
    return f"{socket.gethostname()}|{_read('/proc/sys/kernel/random/boot_id')}|{pidns}"[:255]


def proc_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), "" if none."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    # after the ")" : state is field 3, starttime field 22
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else ""


def process_gone(pid: int, started: str) -> bool:
    """The process that wrote this lease no longer runs on this host."""
    if not started:  # written where /proc was unreadable: nothing to compare, trust the lease
        return False
    return proc_start(pid) != started


@dataclass(frozen=True, slots=True)
class Me:
    """This process's lease identity."""

    id: str
    host: str
    pid: int
    proc_start: str
    ttl_s: float

    @classmethod
    def new(cls, instance_id: str | None = None, ttl_s: float | None = None) -> "Me":
        pid = os.getpid()
        return cls(instance_id or new_instance_id(), host_key(), pid, proc_start(pid),
                   float(ttl_s if ttl_s else DEFAULT_LEASE_S))

    @property
    def renew_s(self) -> float:
        """How often the lease is renewed: three chances before it expires."""
        return max(0.2, self.ttl_s / 3.0)


def db_now(conn: sa.Connection) -> dt.datetime:
    """The database's clock on PostgreSQL (shared by every instance), ours on SQLite (one host)."""
    if conn.dialect.name == "postgresql":
        value = conn.execute(sa.select(sa.func.now())).scalar_one()
        return schema.utc(value)  # type: ignore[return-value]
    return _now()


def register(engine: sa.Engine, me: Me) -> None:
    """Take this instance's lease (at start, and again if another instance removed it)."""
    with engine.begin() as conn:
        now = db_now(conn)
        values = dict(host=me.host, pid=me.pid, proc_start=me.proc_start, started_at=now, renewed_at=now,
                      expires_at=now + dt.timedelta(seconds=me.ttl_s))
        i = schema.instances
        if conn.execute(i.update().where(i.c.id == me.id).values(**values)).rowcount == 0:
            conn.execute(i.insert().values(id=me.id, **values))


def renew(engine: sa.Engine, me: Me) -> bool:
    """Extend the lease; False if it was gone (another instance took this one for dead and
    recovered its calls: the lease is taken again, the caller logs it)."""
    i = schema.instances
    with engine.begin() as conn:
        now = db_now(conn)
        updated = conn.execute(
            i.update().where(i.c.id == me.id).values(renewed_at=now, expires_at=now + dt.timedelta(seconds=me.ttl_s))
        ).rowcount
    if updated:
        return True
    register(engine, me)
    return False


def release(engine: sa.Engine, me: Me) -> None:
    """Give the lease up (a clean close): what is left open of this instance is recoverable at once."""
    with engine.begin() as conn:
        conn.execute(schema.instances.delete().where(schema.instances.c.id == me.id))


@dataclass(frozen=True, slots=True)
class Leases:
    known: frozenset[str]  # every instance with a lease row
    dead: frozenset[str]  # rows of dead instances (see the module's rules)


def leases(conn: sa.Connection, me: Me, *, trust_expiry: bool) -> Leases:
    now = db_now(conn)
    rows = conn.execute(sa.select(schema.instances)).mappings().all()
    same_host = conn.dialect.name == "sqlite"
    dead = set()
    for r in rows:
        if r["id"] == me.id:
            continue
        if trust_expiry and schema.utc(r["expires_at"]) < now:  # type: ignore[operator]
            dead.add(r["id"])
        elif same_host and r["host"] == me.host and process_gone(r["pid"], r["proc_start"]):
            dead.add(r["id"])
    return Leases(frozenset(r["id"] for r in rows), frozenset(dead))


def owner_dead(column: Any, me: Me, found: Leases) -> Any:
    """SQL: the row's instance (``column``) is dead, or its lease row is gone."""
    alive = [i for i in found.known if i not in found.dead] + [me.id]
    return sa.and_(column.is_not(None), column.not_in(alive))
