"""The lead and call store: SQLite (WAL) by default, PostgreSQL by URL.

:class:`Store` is synchronous and thread-safe (SQLAlchemy's pool): every method is one
short transaction, meant to run in a worker thread. The async side, :class:`SqlRecorder`,
is what the call session talks to; it moves each write off the event loop and turns a DB
failure into an ERROR log line, because a full disk must never end a phone call.

Every value is checked and capped by :mod:`leads.fields` before any SQL runs (the same rules
on SQLite and PostgreSQL): an invalid identifier or phone number raises
:class:`~leads.fields.InvalidField` and nothing of that write is stored; free text is cut.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
from typing import Any, Iterable

import sqlalchemy as sa
import trio

from dialog.base import LeadState
from leads import fields, schema
from leads.base import CallInfo, CallMetrics, CallRecorder, Speaker
from leads.fields import InvalidField
from leads.lead import check_lead, lead_json, merge_lead, whatsapp_fallback_summary
from leads.migrations import migrate
from telemetry.logs import log_event

DEFAULT_URL = "sqlite:///agentlocator.db"
WRITE_ERRORS = (sa.exc.SQLAlchemyError, OSError)
MAX_BUFFERED_EVENTS = 5000


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
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

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
        cur.execute("PRAGMA busy_timeout=15000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Store:
    """Calls, leads, transcripts, timeline and the outbox, in one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # Calls of this process are all active after this; older open calls are a crash's.
        self.opened_at = _now()
        # Set by writers that queue outbox items, waited on by the sender (leads.outbox).
        self.outbox_wakeup: trio.Event | None = None

    @classmethod
    def open(cls, url: str | None = None) -> "Store":
        """Connect and bring the schema up to date. ``url`` defaults to $DATABASE_URL."""
        url = url or os.environ.get("DATABASE_URL") or DEFAULT_URL
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
            engine = _sqlite_engine(parsed)
        else:
            engine = sa.create_engine(parsed, pool_pre_ping=True)
        store = cls(engine)
        migrate(engine)
        return store

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # -- writes from a call -------------------------------------------------------------------

    def _ensure_call(self, conn: sa.Connection, call_sid: str, now: dt.datetime) -> None:
        """A row for this call even if its start was never written (e.g. the disk was full)."""
        insert = _dialect_insert(conn)(schema.calls).values(call_sid=call_sid, started_at=now, last_activity_at=now)
        conn.execute(insert.on_conflict_do_nothing(index_elements=["call_sid"]))

    def record_call_start(self, info: CallInfo) -> None:
        call_sid = fields.call_sid(info.call_sid)
        values = dict(
            stream_sid=fields.stream_sid(info.stream_sid),
            from_number=fields.phone(info.from_number, "from_number"),
            to_number=fields.phone(info.to_number, "to_number"),
            started_at=info.started_at, last_activity_at=info.started_at,
        )
        with self.engine.begin() as conn:
            insert = _dialect_insert(conn)(schema.calls).values(call_sid=call_sid, **values)
            conn.execute(insert.on_conflict_do_update(index_elements=["call_sid"], set_=values))

    def record_turn(
        self, call_sid: str, speaker: Speaker, text: str, t_start_ms: int, t_end_ms: int,
        heard_fully: bool, now: dt.datetime | None = None,
    ) -> None:
        now = now or _now()
        call_sid = fields.call_sid(call_sid)
        row = dict(
            call_sid=call_sid, speaker=fields.speaker(speaker),
            text=fields.text(text, fields.TRANSCRIPT_TEXT_MAX, "text") or "",
            t_start_ms=fields.clamp_int(t_start_ms, "t_start_ms"), t_end_ms=fields.clamp_int(t_end_ms, "t_end_ms"),
            heard_fully=bool(heard_fully),
        )
        with self.engine.begin() as conn:
            self._ensure_call(conn, call_sid, now)
            conn.execute(schema.transcripts.insert().values(**row))
            values: dict[str, Any] = {"last_activity_at": now}
            if speaker == "caller":
                values["turns"] = schema.calls.c.turns + 1
            conn.execute(schema.calls.update().where(schema.calls.c.call_sid == call_sid).values(**values))

    def record_timeline(self, call_sid: str, events: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
        call_sid = fields.call_sid(call_sid)
        rows = [
            {"call_sid": call_sid, "t_ms": fields.clamp_int(t_ms, "t_ms"),
             "kind": fields.text(str(kind), fields.TIMELINE_KIND_MAX, "kind"),
             "detail": fields.timeline_detail(detail)}
            for t_ms, kind, detail in events
        ]
        if not rows:
            return
        with self.engine.begin() as conn:
            self._ensure_call(conn, call_sid, _now())
            conn.execute(schema.timeline.insert(), rows)

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
        """Insert or refresh one item; an item already past 'held' is never touched again,
        which is what makes a repeated call_ended (or a recovery after it) send only once.
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

    def record_lead(
        self, call_sid: str, phone: str, lead: LeadState, whatsapp_summary: str | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """The lead as it stands mid-call, plus the follow-up held until the call ends."""
        now = now or _now()
        call_sid = fields.call_sid(call_sid)
        phone = fields.phone(phone)
        if not phone:
            return  # a withheld number: an anonymous caller is no lead
        check_lead(lead)
        summary = fields.text(whatsapp_summary or whatsapp_fallback_summary(lead), fields.SUMMARY_MAX, "summary")
        with self.engine.begin() as conn:
            self._ensure_call(conn, call_sid, now)
            self._upsert_lead(conn, call_sid, phone, lead, now)
            conn.execute(
                schema.calls.update().where(schema.calls.c.call_sid == call_sid).values(
                    pending_summary=summary, last_activity_at=now
                )
            )
            self._put_outbox(
                conn, key=f"whatsapp:{call_sid}", call_sid=call_sid, phone=phone, channel="whatsapp",
                body=summary, state="held",
            )

    def record_call_end(
        self, call_sid: str, ended_at: dt.datetime, close_reason: str, outcome: str,
        metrics: CallMetrics, phone: str, lead: LeadState, whatsapp_summary: str, *,
        lead_webhook: bool = False,
    ) -> None:
        """End of call, final lead, and the follow-ups queued — all in one transaction."""
        call_sid = fields.call_sid(call_sid)
        phone = fields.phone(phone)
        check_lead(lead)
        close_reason = fields.text(close_reason, fields.CLOSE_REASON_MAX, "close_reason")
        outcome = fields.text(outcome, fields.OUTCOME_MAX, "outcome")
        whatsapp_summary = fields.text(whatsapp_summary, fields.SUMMARY_MAX, "summary") or ""
        stored_metrics = fields.metrics(dataclasses.asdict(metrics))
        turns = fields.clamp_int(metrics.turns, "turns")
        with self.engine.begin() as conn:
            self._ensure_call(conn, call_sid, ended_at)
            started = schema.utc(
                conn.execute(
                    sa.select(schema.calls.c.started_at).where(schema.calls.c.call_sid == call_sid)
                ).scalar_one()
            )
            conn.execute(
                schema.calls.update().where(schema.calls.c.call_sid == call_sid).values(
                    ended_at=ended_at, last_activity_at=ended_at, close_reason=close_reason,
                    outcome=outcome, duration_s=max(0.0, (ended_at - started).total_seconds()),
                    turns=turns or schema.calls.c.turns,
                    metrics=stored_metrics, pending_summary=whatsapp_summary,
                )
            )
            if not phone:
                return  # anonymous caller: nobody to follow up with
            saved = self._upsert_lead(conn, call_sid, phone, lead, ended_at)
            self._queue_followups(conn, call_sid, phone, whatsapp_summary, saved, lead_webhook)

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

    def recover_interrupted(self, before: dt.datetime, *, lead_webhook: bool = False) -> list[str]:
        """Close the calls a crash left open (no activity since ``before``, the restart time)
        and release their held follow-ups. Returns the recovered call SIDs."""
        recovered: list[str] = []
        with self.engine.begin() as conn:
            open_calls = conn.execute(
                sa.select(schema.calls).where(
                    schema.calls.c.ended_at.is_(None), schema.calls.c.last_activity_at < before
                )
            ).mappings().all()
            for call in open_calls:
                last = schema.utc(call["last_activity_at"])
                started = schema.utc(call["started_at"])
                conn.execute(
                    schema.calls.update().where(schema.calls.c.call_sid == call["call_sid"]).values(
                        ended_at=last, close_reason="server_restart", outcome="interrupted",
                        duration_s=max(0.0, (last - started).total_seconds()),
                    )
                )
                recovered.append(call["call_sid"])
                phone = call["phone"]
                if not phone:
                    continue
                lead = conn.execute(sa.select(schema.leads).where(schema.leads.c.phone == phone)).mappings().first()
                summary = call["pending_summary"] or ""
                if lead is not None and summary:
                    self._queue_followups(conn, call["call_sid"], phone, summary, dict(lead), lead_webhook)
        return recovered


def _log_db_error(what: str, call_sid: str, exc: BaseException) -> None:
    log_event(
        "ERROR", logging.ERROR, call_sid=call_sid[: fields.SID_LEN * 2], where=f"store.{what}",
        error=f"{type(exc).__name__}: {exc}"[:500],
    )


def _valid_sid(call_sid: object) -> bool:
    try:
        fields.call_sid(call_sid)
        return True
    except InvalidField:
        return False


class SqlRecorder(CallRecorder):
    """The session's recorder over a :class:`Store`. Never raises on DB trouble: logs ERROR.

    Timeline events are buffered in memory (no I/O on the hot path) and written with the
    next transcript turn, lead update or the call's end.
    """

    def __init__(self, store: Store, *, lead_webhook: bool | None = None) -> None:
        self.store = store
        self.lead_webhook = bool(os.environ.get("LEAD_WEBHOOK_URL")) if lead_webhook is None else lead_webhook
        self._timeline: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}

    async def _attempt(self, what: str, call_sid: str, fn: Any, *args: Any, **kwargs: Any) -> BaseException | None:
        """Run one store write in a worker thread; a failure is logged and returned."""
        try:
            await trio.to_thread.run_sync(lambda: fn(*args, **kwargs))
            return None
        except (*WRITE_ERRORS, InvalidField) as exc:
            _log_db_error(what, call_sid, exc)
            return exc

    async def _run(self, what: str, call_sid: str, fn: Any, *args: Any, **kwargs: Any) -> bool:
        return await self._attempt(what, call_sid, fn, *args, **kwargs) is None

    async def _flush_timeline(self, call_sid: str) -> None:
        events = self._timeline.pop(call_sid, None)
        if not events:
            return
        failed = await self._attempt("timeline", call_sid, self.store.record_timeline, call_sid, events)
        if failed is not None and not isinstance(failed, InvalidField):
            # Keep them for the next try rather than lose the record of the call.
            self._timeline.setdefault(call_sid, [])[:0] = events

    def _wake_sender(self) -> None:
        if self.store.outbox_wakeup is not None:
            self.store.outbox_wakeup.set()

    def timeline_event(self, call_sid: str, t_ms: float, kind: str, **detail: Any) -> None:
        if call_sid not in self._timeline and not _valid_sid(call_sid):
            return  # never storable: the call's first write already logged why
        events = self._timeline.setdefault(call_sid, [])
        if len(events) < MAX_BUFFERED_EVENTS:  # a call whose writes all fail must not grow forever
            events.append((int(t_ms), kind, detail))

    async def call_started(self, info: CallInfo) -> None:
        for _ in range(3):
            failed = await self._attempt("call_started", info.call_sid, self.store.record_call_start, info)
            if not (isinstance(failed, InvalidField) and failed.field in ("from_number", "to_number")):
                return
            # The call is still recorded (and so can be closed), without the number it could not read.
            info = dataclasses.replace(info, **{failed.field: ""})

    async def transcript_turn(
        self, call_sid: str, speaker: Speaker, text: str, t_start_ms: int, t_end_ms: int, heard_fully: bool
    ) -> None:
        await self._run(
            "transcript_turn", call_sid, self.store.record_turn,
            call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully,
        )
        await self._flush_timeline(call_sid)

    async def lead_updated(
        self, call_sid: str, phone: str, lead: LeadState, whatsapp_summary: str | None = None
    ) -> None:
        if not phone:
            return
        snapshot = dataclasses.replace(lead, slots=dataclasses.replace(lead.slots))
        if await self._run(
            "lead_updated", call_sid, self.store.record_lead, call_sid, phone, snapshot, whatsapp_summary
        ):
            log_event("LEAD_SAVED", call_sid=call_sid, phone=phone, status=lead.status)
        await self._flush_timeline(call_sid)

    async def call_ended(
        self, call_sid: str, ended_at: dt.datetime, close_reason: str, outcome: str,
        metrics: CallMetrics, phone: str, lead: LeadState, whatsapp_summary: str,
    ) -> None:
        await self._flush_timeline(call_sid)
        failed = await self._attempt(
            "call_ended", call_sid, self.store.record_call_end, call_sid, ended_at, close_reason,
            outcome, metrics, phone, lead, whatsapp_summary, lead_webhook=self.lead_webhook,
        )
        if isinstance(failed, InvalidField) and failed.field == "phone":
            # An unreadable number is nobody to follow up with: the call is still closed.
            phone = ""
            failed = await self._attempt(
                "call_ended", call_sid, self.store.record_call_end, call_sid, ended_at, close_reason,
                outcome, metrics, phone, lead, whatsapp_summary, lead_webhook=self.lead_webhook,
            )
        ok = failed is None
        self._timeline.pop(call_sid, None)
        if ok:
            if phone:
                log_event("LEAD_SAVED", call_sid=call_sid, phone=phone, status=lead.status, final=True)
            self._wake_sender()


def open_store(url: str | None = None) -> SqlRecorder:
    """For server.wiring: the store at ``url`` (migrated) behind its recorder (``.store``),
    fed the calls' timelines from the session's log events."""
    from leads.timeline import attach_timeline

    recorder = SqlRecorder(Store.open(url))
    attach_timeline(recorder)
    return recorder
