"""Dial jobs in the database: queued, claimed, placed, and settled by Twilio's callbacks.

Blocking, like every store operation (run them with ``store.run``). The trio loop that
places the calls is :mod:`leads.dialer`; these are its transactions, each short:

- :func:`enqueue` (inside another transaction: an intake, a call's end asking for a
  callback) and :func:`queue_call` (the operator's "call now");
- :func:`claim_due` — the outbox's claiming pattern (leads.outbox): on PostgreSQL
  ``SELECT ... FOR UPDATE SKIP LOCKED`` under a transaction-scoped advisory lock, so that
  the MAX_OUTBOUND_CALLS cap (jobs in ``dialing`` or ``calling``, counted across every
  instance) holds however many servers claim at once; on SQLite the claim's transaction
  takes the write lock up front (BEGIN IMMEDIATE), which serialises the processes the same
  way. A job for an opted-out number is cancelled here; one due outside calling hours
  moves to the next opening without using an attempt;
- :func:`placed` / :func:`create_failed` after ``calls.create``;
- :func:`apply_status` (Twilio's final CallStatus) and :func:`apply_amd` (answering
  machine detection) — idempotent, keyed by the job id in the callback URL;
- :func:`release_stale` — a job left ``dialing`` by a dead instance (its lease gone) goes
  back to pending; one ``calling`` whose final status never came is closed.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from leads import fields, instances, schema
from leads.hours import CallingHours, Step, next_attempt
from leads.store import Store, _dialect_insert

OPEN_STATES = ("pending", "dialing", "calling")
ACTIVE_STATES = ("dialing", "calling")
# Twilio's final CallStatus values that mean the lead was not reached.
NOT_REACHED = ("busy", "no-answer", "failed", "canceled")
MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
REASONS = ("intake", "operator", "callback")
CLAIM_LOCK = 741002  # pg_advisory_xact_lock key: one claimer at a time (the cap is global)
HISTORY_MAX = 20


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _utc(at: dt.datetime | None) -> dt.datetime:
    """Times are written as UTC (SQLite keeps the wall time of whatever zone it is given)."""
    return (at or _now()).astimezone(dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class DialJob:
    id: int
    phone: str
    reason: str
    attempts: int  # including the one just claimed


# -- queueing ------------------------------------------------------------------------------------

def opted_out(conn: sa.Connection, phone: str) -> bool:
    d = schema.do_not_call
    return conn.execute(sa.select(d.c.phone).where(d.c.phone == phone)).first() is not None


def open_job(conn: sa.Connection, phone: str, states: tuple[str, ...] = OPEN_STATES) -> Any:
    j = schema.dial_jobs
    return conn.execute(
        sa.select(j).where(j.c.phone == phone, j.c.state.in_(states)).order_by(j.c.id.desc()).limit(1)
    ).mappings().first()


def enqueue(conn: sa.Connection, phone: str, reason: str, due_at: dt.datetime, *, now: dt.datetime | None = None,
            note: str | None = None, origin_call_sid: str | None = None) -> tuple[int | None, str]:
    """Queue a call to ``phone`` at ``due_at`` (the dialer moves it into calling hours), in
    the caller's transaction, which holds the lead's row locked (``SELECT ... FOR UPDATE``). Returns (job id, what happened): ``queued``; ``already_queued``
    (an open job exists: never two calls to one lead; a callback moves a pending job to the
    time the lead named); ``opted_out`` (no job)."""
    now = _utc(now)
    if reason not in REASONS:
        raise fields.InvalidField("reason", f"not one of {REASONS}", reason)
    due_at = _utc(due_at)
    if opted_out(conn, phone):
        return None, "opted_out"
    j = schema.dial_jobs
    if origin_call_sid:
        done = conn.execute(sa.select(j.c.id).where(j.c.origin_call_sid == origin_call_sid)).first()
        if done is not None:
            return done.id, "already_queued"  # the same call's end, replayed
    # A callback is asked for during the call that the current job placed (still 'calling'):
    # only a pending job is in its way.
    existing = open_job(conn, phone, ("pending",) if reason == "callback" else OPEN_STATES)
    if existing is not None:
        if reason == "callback":
            conn.execute(j.update().where(j.c.id == existing["id"]).values(
                reason="callback", due_at=due_at, note=note, origin_call_sid=origin_call_sid, updated_at=now))
        return existing["id"], "already_queued"
    job_id = conn.execute(j.insert().values(
        phone=phone, reason=reason, state="pending", attempts=0, due_at=due_at, note=note,
        origin_call_sid=origin_call_sid, history=[], created_at=now, updated_at=now,
    ).returning(j.c.id)).scalar_one()
    return job_id, "queued"


def queue_call(store: Store, phone: str, reason: str = "operator", due_at: dt.datetime | None = None,
               note: str | None = None) -> tuple[int | None, str]:
    """:func:`enqueue` in a transaction of its own (the API's "call now")."""
    number = fields.phone(phone)
    if not number:
        raise fields.InvalidField("phone", "no phone number", phone)
    now = _now()
    with store.engine.begin() as conn:
        _ensure_lead(conn, number, now)
        return enqueue(conn, number, reason, _utc(due_at or now), now=now, note=note)


def _ensure_lead(conn: sa.Connection, phone: str, now: dt.datetime) -> None:
    """The lead row exists, locked for this transaction: queueing for one lead is serialised
    (two instances cannot both find no open job and queue two calls)."""
    insert = _dialect_insert(conn)(schema.leads).values(phone=phone, created_at=now, updated_at=now)
    conn.execute(insert.on_conflict_do_nothing(index_elements=["phone"]))
    conn.execute(sa.select(schema.leads.c.phone).where(schema.leads.c.phone == phone).with_for_update())


# -- claiming ------------------------------------------------------------------------------------

def claim_due(store: Store, now: dt.datetime, cap: int, hours: CallingHours, limit: int = 20) -> list[DialJob]:
    """Due jobs, at most ``cap`` calls in flight overall: each claimed one is ``dialing``
    (attempts + 1, claimed_by this instance)."""
    j = schema.dial_jobs
    now = _utc(now)
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({CLAIM_LOCK})"))
        active = conn.execute(sa.select(sa.func.count()).select_from(j).where(j.c.state.in_(ACTIVE_STATES))).scalar_one()
        room = min(limit, cap - active)
        if room <= 0:
            return []
        query = (sa.select(j).where(j.c.state == "pending", j.c.due_at <= now)
                 .order_by(j.c.due_at, j.c.id).limit(room + 10))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed: list[DialJob] = []
        for r in conn.execute(query).mappings().all():
            if opted_out(conn, r["phone"]):
                conn.execute(j.update().where(j.c.id == r["id"]).values(
                    state="cancelled", outcome="opted_out", due_at=None, updated_at=now))
                continue
            if not hours.allowed(now):
                # Not an attempt: the job simply waits for the next opening.
                conn.execute(j.update().where(j.c.id == r["id"]).values(due_at=hours.next_allowed(now), updated_at=now))
                continue
            if len(claimed) >= room:
                break
            conn.execute(j.update().where(j.c.id == r["id"]).values(
                state="dialing", attempts=r["attempts"] + 1, claimed_by=store.instance_id, call_sid=None,
                outcome=None, updated_at=now))
            claimed.append(DialJob(r["id"], r["phone"], r["reason"], r["attempts"] + 1))
        return claimed


def seconds_until_due(store: Store, now: dt.datetime) -> float | None:
    j = schema.dial_jobs
    with store.engine.connect() as conn:
        nxt = conn.execute(sa.select(sa.func.min(j.c.due_at)).where(j.c.state == "pending")).scalar()
    nxt = schema.utc(nxt)
    return None if nxt is None else max(0.0, (nxt - _utc(now)).total_seconds())


# -- results -------------------------------------------------------------------------------------

def _history(row: Any, entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(row["history"] or []), entry][-HISTORY_MAX:]


def placed(store: Store, job_id: int, call_sid: str, now: dt.datetime | None = None) -> None:
    """Twilio took the call: ``calling`` until its final status (unless that came first)."""
    j = schema.dial_jobs
    now = _utc(now)
    with store.engine.begin() as conn:
        conn.execute(j.update().where(j.c.id == job_id, j.c.call_sid.is_(None)).values(call_sid=call_sid))
        conn.execute(j.update().where(j.c.id == job_id, j.c.state == "dialing").values(
            state="calling", updated_at=now))


def _retry_or_fail(conn: sa.Connection, row: Any, outcome: str, now: dt.datetime, retries: tuple[Step, ...],
                   hours: CallingHours, error: str | None = None, entry: dict[str, Any] | None = None) -> str:
    j = schema.dial_jobs
    due = next_attempt(retries, row["attempts"], now, hours)
    state = "pending" if due is not None else "failed"
    values: dict[str, Any] = dict(state=state, due_at=due, outcome=outcome, claimed_by=None, updated_at=now,
                                  last_error=fields.text(error, fields.ERROR_TEXT_MAX, "last_error"))
    if entry is not None:
        values["history"] = _history(row, entry)
    conn.execute(j.update().where(j.c.id == row["id"]).values(**values))
    return state


def create_failed(store: Store, job_id: int, error: str, permanent: bool, retries: tuple[Step, ...],
                  hours: CallingHours, now: dt.datetime | None = None) -> str:
    """``calls.create`` failed: retried on the schedule, or failed for good (a 4xx)."""
    j = schema.dial_jobs
    now = _utc(now)
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(j).where(j.c.id == job_id)).mappings().one()
        entry = {"at": now.isoformat(), "call_sid": None, "outcome": "create_failed"}
        if permanent:
            conn.execute(j.update().where(j.c.id == job_id).values(
                state="failed", due_at=None, outcome="create_failed", claimed_by=None, updated_at=now,
                last_error=fields.text(error, fields.ERROR_TEXT_MAX, "last_error"), history=_history(row, entry)))
            return "failed"
        return _retry_or_fail(conn, row, "create_failed", now, retries, hours, error, entry)


def apply_status(store: Store, job_id: int, call_sid: str, status: str, retries: tuple[Step, ...],
                 hours: CallingHours, now: dt.datetime | None = None) -> str | None:
    """Twilio's final CallStatus for the job's call: done (answered by a person), or the
    next attempt on the schedule (busy, no answer, failed, a machine), or failed when the
    retries are spent. None: not a final status, not this job's current call, or already
    settled (a repeated callback)."""
    status = status.lower()
    if status not in ("completed", *NOT_REACHED):
        return None
    j = schema.dial_jobs
    now = _utc(now)
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(j).where(j.c.id == job_id).with_for_update()).mappings().first()
        if row is None or row["state"] not in ACTIVE_STATES:
            return None
        if row["call_sid"] not in (None, call_sid):
            return None  # an earlier attempt's late callback
        if row["call_sid"] is None:
            conn.execute(j.update().where(j.c.id == job_id).values(call_sid=call_sid))
        outcome = "machine" if status == "completed" and row["outcome"] == "machine" else status
        entry = {"at": now.isoformat(), "call_sid": call_sid, "outcome": outcome}
        if status == "completed" and outcome != "machine":
            conn.execute(j.update().where(j.c.id == job_id).values(
                state="done", due_at=None, outcome="completed", claimed_by=None, updated_at=now,
                history=_history(row, entry)))
            return "done"
        return _retry_or_fail(conn, row, outcome, now, retries, hours, entry=entry)


def apply_amd(store: Store, job_id: int, call_sid: str, answered_by: str,
              now: dt.datetime | None = None) -> bool:
    """Twilio's asynchronous answering-machine verdict. True: a machine answered and this job
    has left no voicemail yet (the dialer then says the voicemail line and hangs up)."""
    j = schema.dial_jobs
    now = _utc(now)
    machine = answered_by.lower() in MACHINE
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(j).where(j.c.id == job_id).with_for_update()).mappings().first()
        if row is None or row["call_sid"] not in (None, call_sid) or row["state"] not in ACTIVE_STATES:
            return False
        if not machine:
            conn.execute(j.update().where(j.c.id == job_id).values(outcome="human", updated_at=now))
            return False
        left = any(h.get("voicemail") for h in (row["history"] or []))
        conn.execute(j.update().where(j.c.id == job_id).values(
            outcome="machine", call_sid=call_sid, updated_at=now,
            history=row["history"] if left else _history(row, {"at": now.isoformat(), "call_sid": call_sid,
                                                              "voicemail": True})))
        return not left


def release_stale(store: Store, now: dt.datetime, calling_s: float, trust_expiry: bool = True) -> int:
    """Jobs of dead instances left ``dialing`` go back to pending (at-least-once: the window
    between Twilio's answer to calls.create and :func:`placed`); a ``calling`` job whose final
    status never came within ``calling_s`` is closed (outcome ``unknown``), so it stops
    counting against the cap."""
    j = schema.dial_jobs
    now = _utc(now)
    with store.engine.begin() as conn:
        found = instances.leases(conn, store.me, trust_expiry=trust_expiry)
        released = conn.execute(j.update().where(
            j.c.state == "dialing", instances.owner_dead(j.c.claimed_by, store.me, found),
        ).values(state="pending", due_at=now, claimed_by=None, updated_at=now)).rowcount
        closed = conn.execute(j.update().where(
            j.c.state == "calling", j.c.updated_at < now - dt.timedelta(seconds=calling_s),
        ).values(state="done", outcome="unknown", claimed_by=None, updated_at=now)).rowcount
    return released + closed


# -- reading -------------------------------------------------------------------------------------

def job_json(row: Any) -> dict[str, Any]:
    from leads.lead import iso_local

    return {
        "id": row["id"], "phone": row["phone"], "reason": row["reason"], "state": row["state"],
        "attempts": row["attempts"], "due_at": iso_local(row["due_at"]), "call_sid": row["call_sid"],
        "outcome": row["outcome"], "last_error": row["last_error"], "note": row["note"],
        "history": list(row["history"] or []), "created_at": iso_local(row["created_at"]),
        "updated_at": iso_local(row["updated_at"]),
    }


def list_jobs(store: Store, states: tuple[str, ...] = (), limit: int = 500) -> list[dict[str, Any]]:
    """The dialer's queue for the dashboard: open jobs by when they are due (the next attempts),
    then the settled ones, newest first; ``states`` filters."""
    j = schema.dial_jobs
    query = sa.select(j)
    if states:
        query = query.where(j.c.state.in_(states))
    open_first = sa.case((j.c.state.in_(OPEN_STATES), 0), else_=1)
    query = query.order_by(open_first, sa.case((j.c.state.in_(OPEN_STATES), j.c.due_at), else_=None),
                           j.c.updated_at.desc(), j.c.id.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [job_json(r) for r in conn.execute(query).mappings().all()]


def jobs_for(store: Store, phone: str) -> list[dict[str, Any]]:
    j = schema.dial_jobs
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(j).where(j.c.phone == phone).order_by(j.c.id)).mappings().all()
    return [job_json(r) for r in rows]


def lead_for_call(store: Store, phone: str, call_sid: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the lead row, the dial job placing ``call_sid`` or the phone's latest active one)."""
    j, leads = schema.dial_jobs, schema.leads
    with store.engine.connect() as conn:
        lead = conn.execute(sa.select(leads).where(leads.c.phone == phone)).mappings().first()
        job = conn.execute(sa.select(j).where(j.c.call_sid == call_sid)).mappings().first()
        if job is None:
            job = open_job(conn, phone, ACTIVE_STATES)
    return (dict(lead) if lead else None), (dict(job) if job else None)
