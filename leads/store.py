"""The lead and call store: SQLite (WAL) by default, PostgreSQL by URL.

:class:`Store` is synchronous and thread-safe (SQLAlchemy's pool): every method is one
short transaction, meant to run in a worker thread — the store's own threads
(:meth:`Store.run`, a limiter of its own), never trio's default pool, so a hung database
cannot take the threads speech needs. The async side, :class:`SqlRecorder`, is what the call
session talks to; it never raises on database trouble, because a full disk must never end a
phone call: each write is retried with backoff within a bounded time, and what the database
still did not take goes to the local journal (:mod:`leads.journal`, fsync-ed) and is replayed
in order when the database answers again.

Every value is checked and capped by :mod:`leads.fields` before any SQL runs (the same rules
on SQLite and PostgreSQL): an invalid identifier or phone number raises
:class:`~leads.fields.InvalidField` and nothing of that write is stored; free text is cut.
Writes are checked before they are journaled, so a journaled write is one the database takes.

Several server instances may share one database (:mod:`leads.instances`): every call row
names its owner, and crash recovery closes only calls whose owner's lease is gone.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

import sqlalchemy as sa
import trio

from dialog.base import LeadState
from leads import fields, instances, schema
from leads.base import CallInfo, CallMetrics, CallRecorder, Speaker
from leads.fields import InvalidField
from leads.journal import Journal, Orphan, default_dir
from leads.lead import check_lead, lead_json, merge_lead, whatsapp_fallback_summary
from leads.migrations import migrate
from telemetry.logs import log_event

DEFAULT_URL = "sqlite:///agentlocator.db"
WRITE_ERRORS = (sa.exc.SQLAlchemyError, OSError)
MAX_BUFFERED_EVENTS = 5000
# Threads for database work, apart from trio's default pool (speech's): as many as the pool
# has connections, so a thread never waits on the pool instead of on the limiter.
DB_THREADS = 15
PG_CONNECT_TIMEOUT_S = 5
PG_STATEMENT_TIMEOUT_MS = 20_000  # bounds one attempt of a write on a hung server
# Database errors no retry can fix (the schema is not what this code expects).
_PERMANENT_MESSAGE = re.compile(r"no such table|no such column|has no column named|syntax error", re.I)

T = TypeVar("T")
_UNSET: Any = object()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _dialect_insert(conn: sa.Connection) -> Any:
    """INSERT with ON CONFLICT support for the two backends we run on."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not pysqlite) own transactions, so DDL is transactional and writes
        # can take the lock up front (BEGIN IMMEDIATE) instead of failing on upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed lead survives a power cut too, not only a killed process.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=5000")  # one attempt of a write; the recorder retries
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: sa.URL) -> sa.Engine:
    # Every attempt of a write is bounded: connecting (an unreachable host), a dead peer
    # (unacknowledged data: tcp_user_timeout; idle: keepalives) and a statement that hangs.
    connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S, "keepalives": 1, "keepalives_idle": 10,
                    "keepalives_interval": 3, "keepalives_count": 3, "tcp_user_timeout": 15_000}
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = {PG_STATEMENT_TIMEOUT_MS}")
        dbapi_conn.autocommit = autocommit

    return engine


def is_permanent(exc: BaseException) -> bool:
    """A failed write that retrying cannot fix (so it is logged and dropped, not journaled)."""
    if isinstance(exc, InvalidField):
        return True
    if isinstance(exc, (sa.exc.IntegrityError, sa.exc.DataError, sa.exc.ProgrammingError)):
        return True
    return isinstance(exc, sa.exc.OperationalError) and bool(_PERMANENT_MESSAGE.search(str(exc)))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class DbHealth:
    """Whether the database answers, as the store's writers last saw it. While it is down,
    writes go straight to the journal instead of each waiting out its retries; one write (or
    the keeper's replay) probes it every ``probe_s``. Used from the trio thread only."""

    def __init__(self, probe_s: float = 2.0) -> None:
        self.probe_s = probe_s
        self.down_since: float | None = None
        self.next_probe = 0.0
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def usable(self) -> bool:
        return self.down_since is None or trio.current_time() >= self.next_probe

    def failed(self, exc: BaseException, where: str) -> None:
        now = trio.current_time()
        self.next_probe = now + self.probe_s
        if self.down_since is None:
            self.down_since = now
            self.outages += 1
            log_event("STORE", logging.ERROR, state="down", where=where, error=describe(exc))

    def ok(self) -> None:
        if self.down_since is not None:
            log_event("STORE", state="up", down_s=round(trio.current_time() - self.down_since, 1))
            self.down_since = None


@dataclass(frozen=True, slots=True)
class Op:
    """One write of a call, checked and ready to apply (or to journal): ``kind`` names the
    Store method ``_op_<kind>``, ``args`` its keyword arguments."""

    kind: str
    call_sid: str
    args: dict[str, Any]


class Store:
    """Calls, leads, transcripts, timeline and the outbox, in one database."""

    def __init__(
        self, engine: sa.Engine, *, me: instances.Me | None = None, database_id: str = "",
        journal_dir: Path | None = None, db_threads: int = DB_THREADS,
    ) -> None:
        self.engine = engine
        # Calls of this process are all active after this; older open calls without an
        # owner (written before leases existed) are a crash's.
        self.opened_at = _now()
        # Set by writers that queue outbox items, waited on by the sender (leads.outbox).
        self.outbox_wakeup: trio.Event | None = None
        # The speed-to-lead dialer (leads.dialer.attach_dialer), when this server runs one:
        # the intake and Twilio's call callbacks wake it.
        self.dialer: Any = None
        self.me = me or instances.Me.new()
        self.database_id = database_id or uuid.uuid4().hex
        self.journal = Journal(journal_dir, self.database_id, self.me.id)
        self.health = DbHealth()
        self.limiter = trio.CapacityLimiter(db_threads)
        # The lease renewal never queues behind a pile of slow writes (or it would expire).
        self.keeper_limiter = trio.CapacityLimiter(1)
        self.replay_lock = trio.Lock()

    @classmethod
    def open(
        cls, url: str | None = None, env: Mapping[str, str] | None = None, *,
        instance_id: str | None = None, lease_s: float | None = None, journal_dir: Any = _UNSET,
    ) -> "Store":
        """Connect, bring the schema up to date and take this instance's lease.

        ``url`` defaults to $DATABASE_URL; ``env`` (default: the process environment) gives
        INSTANCE_ID, INSTANCE_LEASE_SECONDS and STORE_JOURNAL_DIR."""
        env = os.environ if env is None else env
        url = url or env.get("DATABASE_URL") or DEFAULT_URL
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
            engine = _sqlite_engine(parsed)
        else:
            engine = _postgres_engine(parsed)
        migrate(engine)
        with engine.connect() as conn:
            database_id = conn.execute(
                sa.select(schema.store_meta.c.value).where(schema.store_meta.c.key == "database_id")
            ).scalar_one()
        lease = lease_s if lease_s is not None else float(env.get("INSTANCE_LEASE_SECONDS") or instances.DEFAULT_LEASE_S)
        me = instances.Me.new(instance_id or (env.get("INSTANCE_ID") or "").strip()[:64] or None, lease)
        jdir = default_dir(parsed, env) if journal_dir is _UNSET else (Path(journal_dir) if journal_dir else None)
        store = cls(engine, me=me, database_id=database_id, journal_dir=jdir)
        instances.register(engine, me)
        return store

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def instance_id(self) -> str:
        return self.me.id

    def close(self) -> None:
        """Give up the lease (what is left open here is then recoverable at once by another
        instance), release the journal (kept if not empty: the next start replays it)."""
        try:
            instances.release(self.engine, self.me)
        except WRITE_ERRORS:
            pass
        self.journal.close()
        self.engine.dispose()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in one of the store's worker threads (not trio's default pool)."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    # -- the writes of a call, checked (no I/O) --------------------------------------------------

    def check_start(self, info: CallInfo) -> Op:
        call_sid = fields.call_sid(info.call_sid)
        return Op("start", call_sid, dict(
            call_sid=call_sid, stream_sid=fields.stream_sid(info.stream_sid),
            from_number=fields.phone(info.from_number, "from_number"),
            to_number=fields.phone(info.to_number, "to_number"), started_at=info.started_at,
        ))

    def check_turn(
        self, call_sid: str, speaker: Speaker, text: str, t_start_ms: int, t_end_ms: int, heard_fully: bool,
        now: dt.datetime | None = None,
    ) -> Op:
        call_sid = fields.call_sid(call_sid)
        return Op("turn", call_sid, dict(
            call_sid=call_sid, speaker=fields.speaker(speaker),
            text=fields.text(text, fields.TRANSCRIPT_TEXT_MAX, "text") or "",
            t_start_ms=fields.clamp_int(t_start_ms, "t_start_ms"), t_end_ms=fields.clamp_int(t_end_ms, "t_end_ms"),
            heard_fully=bool(heard_fully), now=now or _now(),
        ))

    def check_timeline(self, call_sid: str, events: Iterable[tuple[int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
        fields.call_sid(call_sid)
        return [
            {"t_ms": fields.clamp_int(t_ms, "t_ms"),
             "kind": fields.text(str(kind), fields.TIMELINE_KIND_MAX, "kind"),
             "detail": fields.timeline_detail(detail)}
            for t_ms, kind, detail in events
        ]

    def check_lead(
        self, call_sid: str, phone: str, lead: LeadState, whatsapp_summary: str | None = None,
        now: dt.datetime | None = None,
    ) -> Op | None:
        """None for a withheld number: an anonymous caller is no lead."""
        call_sid = fields.call_sid(call_sid)
        phone = fields.phone(phone)
        if not phone:
            return None
        check_lead(lead)
        summary = fields.text(whatsapp_summary or whatsapp_fallback_summary(lead), fields.SUMMARY_MAX, "summary")
        return Op("lead", call_sid, dict(call_sid=call_sid, phone=phone, lead=lead, summary=summary, now=now or _now()))

    def check_end(
        self, call_sid: str, ended_at: dt.datetime, close_reason: str, outcome: str,
        metrics: CallMetrics, phone: str, lead: LeadState, whatsapp_summary: str, *,
        lead_webhook: bool = False,
    ) -> Op:
        call_sid = fields.call_sid(call_sid)
        phone = fields.phone(phone)
        check_lead(lead)
        lead = dataclasses.replace(lead, slots=dataclasses.replace(lead.slots))  # a journaled copy stays as it was
        return Op("end", call_sid, dict(
            call_sid=call_sid, ended_at=ended_at,
            close_reason=fields.text(close_reason, fields.CLOSE_REASON_MAX, "close_reason"),
            outcome=fields.text(outcome, fields.OUTCOME_MAX, "outcome"),
            metrics=fields.metrics(dataclasses.asdict(metrics)), turns=fields.clamp_int(metrics.turns, "turns"),
            phone=phone, lead=lead, summary=fields.text(whatsapp_summary, fields.SUMMARY_MAX, "summary") or "",
            lead_webhook=bool(lead_webhook),
        ))

    # -- applying them -------------------------------------------------------------------------

    def apply(self, op: Op, owner: str | None = None) -> None:
        """One write in one transaction (blocking)."""
        with self.engine.begin() as conn:
            self._apply(conn, op.kind, owner or self.me.id, op.args)

    def apply_record(self, record: Mapping[str, Any]) -> bool:
        """A journal record, at most once (its id is kept in the same transaction); False if
        it had been applied already."""
        with self.engine.begin() as conn:
            done = _dialect_insert(conn)(schema.journal_applied).values(id=record["id"], applied_at=_now())
            if conn.execute(done.on_conflict_do_nothing(index_elements=["id"]).returning(
                    schema.journal_applied.c.id)).first() is None:
                return False
            self._apply(conn, record["op"], record["owner"], record["args"])
            return True

    def _apply(self, conn: sa.Connection, kind: str, owner: str, args: Mapping[str, Any]) -> None:
        getattr(self, f"_op_{kind}")(conn, owner, **args)

    def _ensure_call(self, conn: sa.Connection, call_sid: str, now: dt.datetime, owner: str) -> None:
        """A row for this call even if its start was never written (e.g. the disk was full)."""
        insert = _dialect_insert(conn)(schema.calls).values(
            call_sid=call_sid, started_at=now, last_activity_at=now, owner=owner)
        conn.execute(insert.on_conflict_do_nothing(index_elements=["call_sid"]))

    def _timeline(self, conn: sa.Connection, call_sid: str, rows: list[dict[str, Any]] | None) -> None:
        if rows:
            conn.execute(schema.timeline.insert(), [{"call_sid": call_sid, **r} for r in rows])

    def _op_start(self, conn: sa.Connection, owner: str, *, call_sid: str, started_at: dt.datetime,
                  **values: Any) -> None:
        values.update(started_at=started_at, last_activity_at=started_at, owner=owner)
        insert = _dialect_insert(conn)(schema.calls).values(call_sid=call_sid, **values)
        conn.execute(insert.on_conflict_do_update(index_elements=["call_sid"], set_=values))

    def _op_turn(self, conn: sa.Connection, owner: str, *, call_sid: str, now: dt.datetime,
                 timeline: list[dict[str, Any]] | None = None, **row: Any) -> None:
        self._ensure_call(conn, call_sid, now, owner)
        conn.execute(schema.transcripts.insert().values(call_sid=call_sid, **row))
        values: dict[str, Any] = {"last_activity_at": now}
        if row["speaker"] == "caller":
            values["turns"] = schema.calls.c.turns + 1
        conn.execute(schema.calls.update().where(schema.calls.c.call_sid == call_sid).values(**values))
        self._timeline(conn, call_sid, timeline)

    def _op_timeline(self, conn: sa.Connection, owner: str, *, call_sid: str, rows: list[dict[str, Any]]) -> None:
        self._ensure_call(conn, call_sid, _now(), owner)
        self._timeline(conn, call_sid, rows)

    def _op_lead(self, conn: sa.Connection, owner: str, *, call_sid: str, phone: str, lead: LeadState,
                 summary: str | None, now: dt.datetime, timeline: list[dict[str, Any]] | None = None) -> None:
        self._ensure_call(conn, call_sid, now, owner)
        self._upsert_lead(conn, call_sid, phone, lead, now)
        conn.execute(
            schema.calls.update().where(schema.calls.c.call_sid == call_sid).values(
                pending_summary=summary, last_activity_at=now
            )
        )
        self._put_outbox(conn, key=f"whatsapp:{call_sid}", call_sid=call_sid, phone=phone, channel="whatsapp",
                         body=summary or "", state="held")
        self._timeline(conn, call_sid, timeline)

    def _op_end(self, conn: sa.Connection, owner: str, *, call_sid: str, ended_at: dt.datetime,
                close_reason: str | None, outcome: str | None, metrics: dict[str, Any], turns: int, phone: str,
                lead: LeadState, summary: str, lead_webhook: bool,
                timeline: list[dict[str, Any]] | None = None) -> None:
        self._ensure_call(conn, call_sid, ended_at, owner)
        self._timeline(conn, call_sid, timeline)
        started = schema.utc(
            conn.execute(sa.select(schema.calls.c.started_at).where(schema.calls.c.call_sid == call_sid)).scalar_one()
        )
        conn.execute(
            schema.calls.update().where(schema.calls.c.call_sid == call_sid).values(
                ended_at=ended_at, last_activity_at=ended_at, close_reason=close_reason,
                outcome=outcome, duration_s=max(0.0, (ended_at - started).total_seconds()),
                turns=turns or schema.calls.c.turns, metrics=metrics, pending_summary=summary,
            )
        )
        if not phone:
            return  # anonymous caller: nobody to follow up with
        saved = self._upsert_lead(conn, call_sid, phone, lead, ended_at)
        if lead.do_not_call:
            # "Don't call me again": on the do-not-call list, its queued calls cancelled, and no
            # follow-up message either (leads.optout).
            from leads.optout import add

            add(conn, phone, "call", ended_at)
            return
        self._queue_followups(conn, call_sid, phone, summary, saved, lead_webhook)
        if lead.callback_at is not None:
            # "Not a good time, call me at six": the dialer calls back then (leads.dialjobs).
            from leads.dialjobs import enqueue

            at = lead.callback_at.astimezone(dt.timezone.utc)
            enqueue(conn, phone, "callback", at, now=ended_at, origin_call_sid=call_sid,
                    note=f"asked for a call back at {lead.callback_at.isoformat(timespec='minutes')}")

    # -- the writes of a call, blocking (tests, benches, tools) ---------------------------------

    def record_call_start(self, info: CallInfo) -> None:
        self.apply(self.check_start(info))

    def record_turn(
        self, call_sid: str, speaker: Speaker, text: str, t_start_ms: int, t_end_ms: int,
        heard_fully: bool, now: dt.datetime | None = None,
    ) -> None:
        self.apply(self.check_turn(call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully, now))

    def record_timeline(self, call_sid: str, events: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
        rows = self.check_timeline(call_sid, events)
        if rows:
            self.apply(Op("timeline", call_sid, {"call_sid": call_sid, "rows": rows}))

    def record_lead(
        self, call_sid: str, phone: str, lead: LeadState, whatsapp_summary: str | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """The lead as it stands mid-call, plus the follow-up held until the call ends."""
        op = self.check_lead(call_sid, phone, lead, whatsapp_summary, now)
        if op is not None:
            self.apply(op)

    def record_call_end(
        self, call_sid: str, ended_at: dt.datetime, close_reason: str, outcome: str,
        metrics: CallMetrics, phone: str, lead: LeadState, whatsapp_summary: str, *,
        lead_webhook: bool = False,
    ) -> None:
        """End of call, final lead, and the follow-ups queued — all in one transaction."""
        self.apply(self.check_end(call_sid, ended_at, close_reason, outcome, metrics, phone, lead,
                                  whatsapp_summary, lead_webhook=lead_webhook))

    # -- shared pieces -------------------------------------------------------------------------

    def _upsert_lead(
        self, conn: sa.Connection, call_sid: str, phone: str, lead: LeadState, now: dt.datetime
    ) -> dict[str, Any]:
        # Create-if-absent, then lock the row: two calls of one caller at once merge in turn
        # instead of one failing on the primary key.
        insert = _dialect_insert(conn)(schema.leads).values(phone=phone, created_at=now, updated_at=now)
        conn.execute(insert.on_conflict_do_nothing(index_elements=["phone"]))
        row = conn.execute(
            sa.select(schema.leads).where(schema.leads.c.phone == phone).with_for_update()
        ).mappings().one()
        values = merge_lead(dict(row), lead)
        values.update(last_call_sid=call_sid, updated_at=now)
        conn.execute(schema.leads.update().where(schema.leads.c.phone == phone).values(**values))
        call_values: dict[str, Any] = {"phone": phone}
        if values["status"] == "meeting_booked" and lead.status == "meeting_booked":
            # first time only: the count of caller turns it took
            call_values["turns_to_meeting"] = sa.func.coalesce(schema.calls.c.turns_to_meeting, schema.calls.c.turns)
        conn.execute(schema.calls.update().where(schema.calls.c.call_sid == call_sid).values(**call_values))
        return {"phone": phone, **values}

    def _put_outbox(
        self, conn: sa.Connection, *, key: str, call_sid: str, phone: str, channel: str, body: str,
        state: str,
    ) -> None:
        """Insert or refresh one item. A held item takes the new body and state; a pending one
        (due, not yet claimed by a sender) only the newer body — so the call's real end,
        replayed from a journal after a crash recovery released the mid-call summary, still
        sends the final summary if it is not out yet. An item being sent or sent is never
        touched again: a repeated call_ended (or a recovery after it) sends only once.
        Its times are the wall clock's: due now, whatever time the call reported."""
        now = _now()
        due = now if state == "pending" else None
        insert = _dialect_insert(conn)(schema.outbox).values(
            key=key, call_sid=call_sid, phone=phone, channel=channel, body=body, state=state,
            attempts=0, next_attempt_at=due, created_at=now, updated_at=now,
        )
        inserted = conn.execute(
            insert.on_conflict_do_nothing(index_elements=["key"]).returning(schema.outbox.c.id)
        ).first()
        if inserted is None:
            o = schema.outbox
            conn.execute(
                o.update().where(o.c.key == key, o.c.state == "held").values(
                    body=body, phone=phone, state=state, next_attempt_at=due, updated_at=now
                )
            )
            if state == "pending":
                conn.execute(
                    o.update().where(o.c.key == key, o.c.state == "pending", o.c.body != body).values(
                        body=body, updated_at=now
                    )
                )

    def _queue_followups(
        self, conn: sa.Connection, call_sid: str, phone: str, summary: str, saved: dict[str, Any],
        lead_webhook: bool,
    ) -> None:
        self._put_outbox(
            conn, key=f"whatsapp:{call_sid}", call_sid=call_sid, phone=phone, channel="whatsapp",
            body=summary, state="pending",
        )
        if lead_webhook and saved["status"] in ("qualified", "meeting_booked"):
            body = json.dumps({"call_sid": call_sid, "lead": lead_json(saved)}, ensure_ascii=False)
            self._put_outbox(
                conn, key=f"webhook:{call_sid}", call_sid=call_sid, phone=phone, channel="webhook",
                body=body, state="pending",
            )

    # -- crash recovery ------------------------------------------------------------------------

    def recover_interrupted(
        self, *, lead_webhook: bool = False, trust_expiry: bool = True,
        legacy_before: dt.datetime | None = None,
    ) -> list[str]:
        """Close the calls of dead instances (see leads.instances: lease gone, expired — if
        ``trust_expiry`` — or, on SQLite, the process gone from this host), release their held
        follow-ups (the mid-call summary) and hand back the outbox items they were sending.
        ``legacy_before``: also calls without an owner (written before leases) with no activity
        since then. Returns the recovered call SIDs."""
        c, o, i = schema.calls, schema.outbox, schema.instances
        recovered: list[str] = []
        with self.engine.begin() as conn:
            found = instances.leases(conn, self.me, trust_expiry=trust_expiry)

            def dead(column: Any) -> Any:
                # "no lease row" is judged inside the statement, in the same snapshot as the
                # rows it scans: an instance registering meanwhile is never taken for gone.
                gone = ~sa.exists().where(i.c.id == column)
                return sa.and_(column.is_not(None), column != self.me.id,
                               sa.or_(column.in_(sorted(found.dead)) if found.dead else sa.false(), gone))

            where = dead(c.c.owner)
            if legacy_before is not None:
                where = sa.or_(where, sa.and_(c.c.owner.is_(None), c.c.last_activity_at < legacy_before))
            query = sa.select(c).where(c.c.ended_at.is_(None), where)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)  # several recoverers at once
            for call in conn.execute(query).mappings().all():
                last = schema.utc(call["last_activity_at"])
                started = schema.utc(call["started_at"])
                closed = conn.execute(
                    c.update().where(c.c.call_sid == call["call_sid"], c.c.ended_at.is_(None)).values(
                        ended_at=last, close_reason="server_restart", outcome="interrupted",
                        duration_s=max(0.0, (last - started).total_seconds()),
                    )
                ).rowcount
                if not closed:
                    continue
                recovered.append(call["call_sid"])
                phone = call["phone"]
                if not phone:
                    continue
                lead = conn.execute(sa.select(schema.leads).where(schema.leads.c.phone == phone)).mappings().first()
                summary = call["pending_summary"] or ""
                if lead is not None and summary:
                    self._queue_followups(conn, call["call_sid"], phone, summary, dict(lead), lead_webhook)
            released = conn.execute(
                o.update().where(o.c.state == "sending", o.c.provider_id.is_(None), dead(o.c.claimed_by)).values(
                    state="pending", next_attempt_at=_now(), updated_at=_now(), claimed_by=None)
            ).rowcount
            if found.dead:
                conn.execute(i.delete().where(i.c.id.in_(sorted(found.dead))))
        self.last_released = released
        return recovered

    last_released = 0  # outbox items the last recovery handed back


def _log_db_error(what: str, call_sid: str, exc: BaseException) -> None:
    log_event(
        "ERROR", logging.ERROR, call_sid=call_sid[: fields.SID_LEN * 2], where=f"store.{what}",
        error=describe(exc),
    )


def _valid_sid(call_sid: object) -> bool:
    try:
        fields.call_sid(call_sid)
        return True
    except InvalidField:
        return False


# -- replaying the journal (the recorder after an outage, the keeper at startup and after) ----

def _wake(store: Store) -> None:
    if store.outbox_wakeup is not None:
        store.outbox_wakeup.set()


async def replay_journal(store: Store, deadline: float | None = None) -> int:
    """Apply this process's journaled writes in order until the first one the database does
    not take (or, past ``deadline``, before the next one: the keeper goes on with the rest).
    Returns how many were applied."""
    journal = store.journal
    if not journal.pending:
        return 0
    applied = ends = 0
    async with store.replay_lock:
        try:
            while journal.pending and (deadline is None or trio.current_time() < deadline):
                record = journal.pending[0]
                try:
                    await store.run(store.apply_record, record)
                except WRITE_ERRORS as exc:
                    if not is_permanent(exc):
                        store.health.failed(exc, "store.replay")
                        break
                    _log_db_error(f"replay.{record['op']}", record["call_sid"], exc)  # dropped for good
                journal.applied(record)
                applied += 1
                ends += record["op"] in ("end", "lead")
        finally:  # cut short too: what was applied is accounted for
            if applied:
                store.health.ok()
                log_event("STORE", state="replayed", applied=applied, left=len(journal.pending), source="own")
                with trio.CancelScope(shield=True):
                    await journal.mark_done()
            if ends:
                _wake(store)
    return applied


async def adopt_orphans(store: Store) -> int:
    """Replay the journals this database's dead processes left on this host."""
    paths = await trio.to_thread.run_sync(store.journal.orphans, limiter=store.keeper_limiter)
    total = 0
    for path in paths:
        orphan = await trio.to_thread.run_sync(Orphan.adopt, path, limiter=store.keeper_limiter)
        if orphan is None:
            continue  # its process runs (it holds the lock)
        applied: list[str] = []
        try:
            for record in orphan.records:
                try:
                    await store.run(store.apply_record, record)
                except WRITE_ERRORS as exc:
                    if not is_permanent(exc):
                        store.health.failed(exc, "store.replay")
                        break
                    _log_db_error(f"replay.{record['op']}", record["call_sid"], exc)
                applied.append(record["id"])
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(orphan.finish, applied, limiter=store.keeper_limiter)
        total += len(applied)
        log_event("STORE", state="replayed", applied=len(applied), left=len(orphan.records) - len(applied),
                  torn_lines=orphan.bad, source=path.name)
    if total:
        store.health.ok()
        _wake(store)
    return total


@dataclass(frozen=True, slots=True)
class WritePolicy:
    """How long one write of a call may try before it goes to the journal."""

    attempts: int = 4
    backoff_base_s: float = 0.25  # then 0.5, 1.0 ... capped
    backoff_cap_s: float = 2.0
    budget_s: float = 6.0  # all attempts and waits of one write (under the session's 10 s)

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_cap_s, self.backoff_base_s * (2 ** max(0, attempt - 1)))


class SqlRecorder(CallRecorder):
    """The session's recorder over a :class:`Store`. Never raises on DB trouble: logs ERROR.

    Each write is retried with backoff (:class:`WritePolicy`); a write the database still
    did not take goes to the journal and is replayed in order (by the next write of a call
    once the database answers, by the store keeper every few seconds, at startup). While the
    database is down, writes go to the journal at once (one probe every few seconds).

    Timeline events are buffered in memory (no I/O on the hot path) and written in the same
    transaction as the next transcript turn, lead update or the call's end.
    """

    def __init__(self, store: Store, *, lead_webhook: bool | None = None, policy: WritePolicy | None = None) -> None:
        self.store = store
        self.lead_webhook = bool(os.environ.get("LEAD_WEBHOOK_URL")) if lead_webhook is None else lead_webhook
        self.policy = policy or WritePolicy()
        self._timeline: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}

    # -- the write path --

    async def _attempts(self, what: str, op: Op, retries: bool) -> BaseException | None:
        """Apply ``op`` with retries within the policy's budget; the last error, or None."""
        policy, store = self.policy, self.store
        deadline = trio.current_time() + policy.budget_s
        attempt = 0
        longest = 0.0  # an attempt that hangs (a connect timeout) is not started again past the budget
        while True:
            attempt += 1
            started = trio.current_time()
            try:
                await store.run(store.apply, op)
                store.health.ok()
                return None
            except WRITE_ERRORS as exc:
                if is_permanent(exc):
                    return exc
                last = exc
            longest = max(longest, trio.current_time() - started)
            delay = policy.backoff(attempt)
            if not retries or attempt >= policy.attempts or trio.current_time() + delay + longest > deadline:
                store.health.failed(last, f"store.{what}")
                return last
            log_event("ERROR", logging.WARNING, call_sid=op.call_sid, where=f"store.{what}", attempt=attempt,
                      retry_in_s=delay, error=describe(last))
            await trio.sleep(delay)

    async def _to_journal(self, what: str, op: Op, why: BaseException | str) -> None:
        journal = self.store.journal
        record = {"id": uuid.uuid4().hex, "op": op.kind, "call_sid": op.call_sid, "owner": self.store.me.id,
                  "args": op.args}
        journal.reserve(op.call_sid)
        with trio.CancelScope(shield=True):  # reserved: it must be appended, whoever gives up waiting
            failure = await journal.append(record)
        reason = why if isinstance(why, str) else describe(why)
        log_event("STORE", logging.WARNING, state="journaled", call_sid=op.call_sid, op=what, reason=reason,
                  pending=len(journal.pending), durable=failure is None and journal.path is not None)
        if failure is not None:
            log_event("ERROR", logging.ERROR, call_sid=op.call_sid, where="store.journal", op=what,
                      error=describe(failure),
                      held="in memory only: lost if this process dies before the database is back")

    async def _write(self, what: str, op: Op) -> bool:
        """True once the database has it; False if it went to the journal (or was dropped)."""
        store, journal = self.store, self.store.journal
        try:
            if journal.has_pending(op.call_sid) or not store.health.usable():
                if store.health.usable() and not store.replay_lock.locked():
                    # The database may be back: this call's journaled writes first, in order,
                    # for half of what one write may try (the keeper replays the rest; one
                    # replaying already takes this write too, queued behind).
                    await replay_journal(store, deadline=trio.current_time() + self.policy.budget_s / 2)
                if journal.has_pending(op.call_sid) or not store.health.usable():
                    await self._to_journal(what, op, "queued behind journaled writes"
                                           if journal.has_pending(op.call_sid) else "database down")
                    return False
            # No checkpoint between the attempt that stored it and this returning: a
            # cancellation seen here means the database does not have the write.
            failed = await self._attempts(what, op, retries=not store.health.down)
        except trio.Cancelled:
            # The session gave up waiting (replaying the backlog, or retrying): the write must
            # not be lost with the wait. (Not journaled yet: _to_journal, once begun, finishes
            # without a checkpoint a cancellation could be seen at.)
            await self._to_journal(what, op, "cancelled while waiting")
            raise
        if failed is None:
            return True
        if is_permanent(failed):
            _log_db_error(what, op.call_sid, failed)
            return False
        await self._to_journal(what, op, failed)
        return False

    def _take_timeline(self, call_sid: str) -> list[dict[str, Any]] | None:
        events = self._timeline.pop(call_sid, None)
        if not events:
            return None
        try:
            return self.store.check_timeline(call_sid, events)
        except InvalidField as exc:
            _log_db_error("timeline", call_sid, exc)
            return None

    def _wake_sender(self) -> None:
        _wake(self.store)

    def timeline_event(self, call_sid: str, t_ms: float, kind: str, **detail: Any) -> None:
        if call_sid not in self._timeline and not _valid_sid(call_sid):
            return  # never storable: the call's first write already logged why
        events = self._timeline.setdefault(call_sid, [])
        if len(events) < MAX_BUFFERED_EVENTS:  # a call whose writes all fail must not grow forever
            events.append((int(t_ms), kind, detail))

    async def _write_with_timeline(self, what: str, op: Op) -> bool:
        rows = self._take_timeline(op.call_sid)
        if rows:
            op = Op(op.kind, op.call_sid, {**op.args, "timeline": rows})
        return await self._write(what, op)

    # -- the recorder interface --

    async def call_started(self, info: CallInfo) -> None:
        for _ in range(3):
            try:
                op = self.store.check_start(info)
            except InvalidField as exc:
                _log_db_error("call_started", info.call_sid, exc)
                if exc.field not in ("from_number", "to_number"):
                    return
                # The call is still recorded (and so can be closed), without the number it could not read.
                info = dataclasses.replace(info, **{exc.field: ""})
                continue
            await self._write("call_started", op)
            return

    async def transcript_turn(
        self, call_sid: str, speaker: Speaker, text: str, t_start_ms: int, t_end_ms: int, heard_fully: bool
    ) -> None:
        try:
            op = self.store.check_turn(call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully)
        except InvalidField as exc:
            _log_db_error("transcript_turn", call_sid, exc)
            return
        await self._write_with_timeline("transcript_turn", op)

    async def lead_updated(
        self, call_sid: str, phone: str, lead: LeadState, whatsapp_summary: str | None = None
    ) -> None:
        if not phone:
            return
        snapshot = dataclasses.replace(lead, slots=dataclasses.replace(lead.slots))
        try:
            op = self.store.check_lead(call_sid, phone, snapshot, whatsapp_summary)
        except InvalidField as exc:
            _log_db_error("lead_updated", call_sid, exc)
            return
        if op is None:
            return
        if await self._write_with_timeline("lead_updated", op):
            log_event("LEAD_SAVED", call_sid=call_sid, phone=op.args["phone"], status=lead.status)

    async def call_ended(
        self, call_sid: str, ended_at: dt.datetime, close_reason: str, outcome: str,
        metrics: CallMetrics, phone: str, lead: LeadState, whatsapp_summary: str,
    ) -> None:
        def check(number: str) -> Op:
            return self.store.check_end(call_sid, ended_at, close_reason, outcome, metrics, number, lead,
                                        whatsapp_summary, lead_webhook=self.lead_webhook)

        try:
            try:
                op = check(phone)
            except InvalidField as exc:
                if exc.field != "phone":
                    raise
                # An unreadable number is nobody to follow up with: the call is still closed.
                _log_db_error("call_ended", call_sid, exc)
                op = check("")
        except InvalidField as exc:
            _log_db_error("call_ended", call_sid, exc)
            self._timeline.pop(call_sid, None)
            return
        written = await self._write_with_timeline("call_ended", op)
        self._timeline.pop(call_sid, None)
        if written:
            if op.args["phone"]:
                log_event("LEAD_SAVED", call_sid=call_sid, phone=op.args["phone"], status=lead.status, final=True)
            self._wake_sender()


def open_store(url: str | None = None, env: Mapping[str, str] | None = None) -> SqlRecorder:
    """For server.wiring: the store at ``url`` (migrated, this instance's lease taken) behind
    its recorder (``.store``), fed the calls' timelines from the session's log events.
    ``env``: the settings' environment (see Store.open)."""
    from leads.timeline import attach_timeline

    store = Store.open(url, env)
    webhook = None if env is None else bool((env.get("LEAD_WEBHOOK_URL") or "").strip())
    recorder = SqlRecorder(store, lead_webhook=webhook)
    attach_timeline(recorder)
    return recorder
