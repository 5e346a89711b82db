"""Read side for the dashboard: rows in the JSON shapes of design.md's contract.

Blocking (one short read each); the dashboard runs them in worker threads.
"""
from __future__ import annotations

import datetime as dt
import math
import statistics
from typing import Any, Iterator

import sqlalchemy as sa

from leads import fields, schema
from leads.lead import iso_local, lead_json
from leads.lead_filter import LeadFilter
from leads.store import Store

METRIC_KEYS = (
    "turn_latency_ms", "asr_latency_ms", "halt_ms", "barge_ins", "barge_ins_clean", "heartbeats",
    # turn-taking as the caller lives it (leads.base.CallMetrics)
    "false_interruptions", "resumed", "ignored", "continuations", "talk_over_ms", "dead_air_ms",
)
# server.session's close reasons that are a normal end of a call (agent said goodbye, the
# caller hung up: Twilio's stop / a clean close); anything else (dropped, error, shutdown,
# server_restart ...) counts as a disconnect on the dashboard.
POLITE_CLOSES = frozenset({"agent_hangup", "twilio_stop", "remote_close"})
CALL_SOURCE = "call"  # a lead with no recorded source came from a call to us


def _call_json(row: Any) -> dict[str, Any]:
    return {
        "call_sid": row["call_sid"],
        "from": row["from_number"],
        "to": row["to_number"],
        "started_at": iso_local(row["started_at"]),
        "ended_at": iso_local(row["ended_at"]),
        "close_reason": row["close_reason"],
        "turns": row["turns"],
        "outcome": row["outcome"],
    }


def _metrics_json(stored: dict[str, Any] | None) -> dict[str, Any]:
    stored = stored or {}
    return {
        key: list(stored.get(key) or []) if key.endswith("_ms") else int(stored.get(key) or 0)
        for key in METRIC_KEYS
    }


def list_calls(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    c = schema.calls
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(c).order_by(c.c.started_at.desc()).limit(limit)).mappings().all()
    return [_call_json(r) for r in rows]


def _lead_item(row: Any) -> dict[str, Any]:
    """design.md's /api/leads item, plus when the lead came in and from where."""
    item = lead_json(row)
    item["created_at"] = iso_local(row["created_at"])
    # leads.source is set by the intake and WhatsApp; a lead without one first phoned us
    item["source"] = item.get("source") or row.get("source") or CALL_SOURCE
    return item


def _lead_conditions(where: LeadFilter) -> Iterator[Any]:
    t = schema.leads
    if where.status:
        yield t.c.status == where.status
    if where.source:
        yield sa.or_(t.c.source == where.source, t.c.source.is_(None)) if where.source == CALL_SOURCE \
            else t.c.source == where.source
    if where.since:
        yield t.c.created_at >= where.since
    if where.until:
        yield t.c.created_at < where.until
    if where.name:
        yield t.c.name.icontains(where.name, autoescape=True)
    if where.digits:
        yield t.c.phone.contains(where.digits, autoescape=True)
    if where.needs_person:
        yield t.c.needs_person.is_not(None)


def list_leads(store: Store, limit: int = 500, where: LeadFilter | None = None) -> list[dict[str, Any]]:
    t = schema.leads
    query = sa.select(t).order_by(t.c.updated_at.desc(), t.c.phone).limit(limit)
    for condition in _lead_conditions(where or LeadFilter()):
        query = query.where(condition)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [_lead_item(r) for r in rows]


def lead_sources(store: Store) -> list[str]:
    """The sources leads came from, for the filter's choices."""
    t = schema.leads
    with store.engine.connect() as conn:
        found = {s or CALL_SOURCE for s in conn.execute(sa.select(t.c.source).distinct()).scalars()}
    return sorted(found)


def _known_format(call_sid: str) -> bool:
    try:
        fields.call_sid(call_sid)
        return True
    except fields.InvalidField:
        return False


def call_detail(store: Store, call_sid: str) -> dict[str, Any] | None:
    if not _known_format(call_sid):  # never stored (leads.fields): not found, without a query
        return None
    c, tr = schema.calls, schema.transcripts
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(c).where(c.c.call_sid == call_sid)).mappings().first()
        if row is None:
            return None
        turns = conn.execute(
            sa.select(tr).where(tr.c.call_sid == call_sid).order_by(tr.c.t_start_ms, tr.c.id)
        ).mappings().all()
    detail = _call_json(row)
    detail["transcript"] = [
        {
            "speaker": t["speaker"], "text": t["text"], "t_start_ms": t["t_start_ms"],
            "t_end_ms": t["t_end_ms"], "heard_fully": bool(t["heard_fully"]),
        }
        for t in turns
    ]
    detail["metrics"] = _metrics_json(row["metrics"])
    detail["lead_phone"] = row["phone"]  # the lead page's key, once the store linked the call
    return detail


def call_timeline(store: Store, call_sid: str) -> list[dict[str, Any]]:
    if not _known_format(call_sid):
        return []
    tl = schema.timeline
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tl).where(tl.c.call_sid == call_sid).order_by(tl.c.t_ms, tl.c.id)
        ).mappings().all()
    return [{"t_ms": r["t_ms"], "kind": r["kind"], "detail": r["detail"] or {}} for r in rows]


def list_outbox(store: Store, limit: int = 500) -> list[dict[str, Any]]:
    o = schema.outbox
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(o).order_by(o.c.created_at.desc()).limit(limit)).mappings().all()
    return [
        {
            "call_sid": r["call_sid"], "phone": r["phone"], "channel": r["channel"], "state": r["state"],
            "attempts": r["attempts"], "last_error": r["last_error"], "provider_id": r["provider_id"],
            "updated_at": iso_local(r["updated_at"]),
        }
        for r in rows
    ]


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None


def _p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile: the least value with at least 95% of them at or below it
    (with fewer than 20 values, the largest)."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.ceil(0.95 * len(ordered)) - 1])


def _count(m: dict[str, Any], key: str) -> int | None:
    """A per-call count; None for a call stored before the figure existed."""
    value = m.get(key)
    return None if value is None else int(value)


def call_figures(row: Any) -> dict[str, Any]:
    """One finished call as a point on the dashboard's charts (the user's six metrics and the
    caller-side turn-taking figures)."""
    m = row["metrics"] or {}
    # The session records talk-over only for agent turns that had some: an empty list on a call
    # that has the field is a call without talk-over (0); a call stored before it has None.
    talk_over = m.get("talk_over_ms")
    talk_over = None if talk_over is None else (list(talk_over) or [0.0])
    dead_air = m.get("dead_air_ms") or []
    duration = row["duration_s"] or 0.0
    barge_ins = int(m.get("barge_ins") or 0)
    return {
        "call_sid": row["call_sid"],
        "t": schema.utc(row["ended_at"]).timestamp(),
        "turn_latency_ms": _mean(m.get("turn_latency_ms") or []),
        "asr_latency_ms": _mean(m.get("asr_latency_ms") or []),
        "halt_ms": max(m.get("halt_ms") or [], default=None),
        "barge_in_success_pct": round(100.0 * int(m.get("barge_ins_clean") or 0) / barge_ins, 1) if barge_ins else None,
        "turns": row["turns"],
        # turn-taking: caller turns that got a whole LISTENING -> PROCESSING -> SPEAKING ->
        # LISTENING cycle (mission item 7), as a share of caller turns
        "turn_taking_pct": round(100.0 * min(int(m.get("state_cycles") or 0), row["turns"]) / row["turns"], 1)
        if row["turns"] and m else None,
        "turns_to_meeting": m.get("turns_to_meeting") or row["turns_to_meeting"],
        "duration_s": round(duration, 1),
        "disconnect": row["close_reason"] not in POLITE_CLOSES,
        "heartbeats_per_min": round(int(m.get("heartbeats") or 0) * 60.0 / duration, 2) if duration >= 1 else None,
        "false_interruptions": _count(m, "false_interruptions"),
        "resumed": _count(m, "resumed"),
        "ignored": _count(m, "ignored"),
        "continuations": _count(m, "continuations"),
        "talk_over_max_ms": float(max(talk_over)) if talk_over else None,
        "talk_over_p95_ms": _p95(talk_over or []),
        "dead_air_max_ms": float(max(dead_air)) if dead_air else None,
        "dead_air_mean_ms": _mean(dead_air),
    }


def metric_series(store: Store, limit: int = 500, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Finished calls (ended at or after ``since``, if given), oldest first, as chart points."""
    c = schema.calls
    query = sa.select(c).where(c.c.ended_at.is_not(None)).order_by(c.c.ended_at.desc()).limit(limit)
    if since is not None:
        query = query.where(c.c.ended_at >= since)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [call_figures(r) for r in reversed(rows)]


# -- one lead's page: everything that happened to it on one timeline -------------------------

def _at(value: dt.datetime | None) -> float:
    stamp = schema.utc(value)
    return stamp.timestamp() if stamp else 0.0


def _transcripts(conn: sa.Connection, sids: list[str]) -> dict[str, list[dict[str, Any]]]:
    tr = schema.transcripts
    out: dict[str, list[dict[str, Any]]] = {sid: [] for sid in sids}
    if not sids:
        return out
    for t in conn.execute(
        sa.select(tr).where(tr.c.call_sid.in_(sids)).order_by(tr.c.call_sid, tr.c.t_start_ms, tr.c.id)
    ).mappings():
        out[t["call_sid"]].append({"speaker": t["speaker"], "text": t["text"], "t_start_ms": t["t_start_ms"],
                                   "t_end_ms": t["t_end_ms"], "heard_fully": bool(t["heard_fully"])})
    return out


def _order(item: dict[str, Any]) -> float:
    at = item.get("at")
    return dt.datetime.fromisoformat(at).timestamp() if at else 0.0


def _dial_items(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A dial job as the timeline tells it: queued (why, for when), then one item per attempt
    with its outcome (and whether a voicemail was left), and the next attempt if one is due."""
    items: list[dict[str, Any]] = []
    for job in jobs:
        items.append({"kind": "dial_job", "at": job["created_at"], "job_id": job["id"], "reason": job["reason"],
                      "state": job["state"], "attempts": job["attempts"], "note": job["note"],
                      "due_at": job["due_at"] if job["state"] == "pending" else None,
                      "outcome": job["outcome"], "last_error": job["last_error"]})
        attempt = 0
        for entry in job["history"]:
            if entry.get("voicemail"):
                continue  # said on the machine's attempt, shown on it
            attempt += 1
            voicemail = any(h.get("voicemail") and h.get("call_sid") == entry.get("call_sid") and entry.get("call_sid")
                            for h in job["history"])
            items.append({"kind": "dial", "at": iso_local(dt.datetime.fromisoformat(entry["at"])), "job_id": job["id"],
                          "attempt": attempt, "outcome": entry.get("outcome"), "call_sid": entry.get("call_sid"),
                          "voicemail": voicemail})
    return items


def lead_page(store: Store, phone: str) -> dict[str, Any] | None:
    """The lead (``phone`` in E.164) and its timeline, oldest first: how it came in (each
    intake and its source), the dial jobs and each attempt's outcome, each call (inbound or
    outbound; transcript and figures), the WhatsApp thread both ways with delivery states (and
    other follow-ups), an opt-out, and the meeting. None when the store knows nothing of it."""
    from leads import dialjobs, intake, optout, whatsapp

    t, c, o = schema.leads, schema.calls, schema.outbox
    with store.engine.connect() as conn:
        lead = conn.execute(sa.select(t).where(t.c.phone == phone)).mappings().first()
        # a call is the lead's once the store linked it (calls.phone); before that (a live call)
        # by its numbers
        calls = conn.execute(
            sa.select(c).where(sa.or_(c.c.phone == phone, c.c.from_number == phone, c.c.to_number == phone))
            .order_by(c.c.started_at)
        ).mappings().all()
        if lead is None and not calls:
            return None
        transcripts = _transcripts(conn, [r["call_sid"] for r in calls])
        others = conn.execute(sa.select(o).where(o.c.phone == phone, o.c.channel != "whatsapp")
                              .order_by(o.c.created_at, o.c.id)).mappings().all()
    items: list[tuple[float, int, dict[str, Any]]] = []
    intakes = intake.intake_for(store, phone)
    for i in reversed(intakes):  # intake_for: newest first
        items.append((0.0, 0, {"kind": "intake", "at": i["received_at"], "source": i["source"],
                               "created_lead": i["created_lead"], "fields": i["fields"]}))
    if lead is not None and not intakes:
        # a caller's lead is stored during its first call: it came in when that call began
        came_in = min([lead["created_at"], *(r["started_at"] for r in calls[:1])], key=_at)
        items.append((0.0, 0, {"kind": "intake", "at": iso_local(came_in), "source": lead.get("source")}))
    for item in _dial_items(dialjobs.jobs_for(store, phone)):
        items.append((0.0, 1, item))
    for r in calls:
        call = _call_json(r)
        call["kind"] = "call"
        call["at"] = call["started_at"]
        call["direction"] = "outbound" if r["to_number"] == phone and r["from_number"] != phone else "inbound"
        call["transcript"] = transcripts[r["call_sid"]]
        call["metrics"] = _metrics_json(r["metrics"])
        call["figures"] = call_figures(r) if r["ended_at"] is not None else None
        items.append((0.0, 2, call))
    for m in whatsapp.thread(store, phone):
        # the thread's "kind" (followup | reply | other) says which of ours it is
        items.append((0.0, 3, {**m, "kind": "message", "channel": "whatsapp", "message_kind": m.get("kind")}))
    for m in others:
        items.append((0.0, 3, {
            "kind": "message", "at": iso_local(m["created_at"]), "channel": m["channel"], "direction": "out",
            "call_sid": m["call_sid"], "body": None, "state": m["state"], "attempts": m["attempts"],
            "error": m["last_error"], "updated_at": iso_local(m["updated_at"]),
        }))
    stopped = optout.opted_out_at(store, phone)
    if stopped is not None:
        items.append((0.0, 4, {"kind": "opt_out", "at": iso_local(stopped[0]), "source": stopped[1]}))
    if lead is not None and lead["meeting_at"] is not None:
        items.append((0.0, 5, {"kind": "meeting", "at": iso_local(lead["meeting_at"])}))
    items = [(_order(item), rank, item) for _, rank, item in items]
    items.sort(key=lambda item: (item[0], item[1]))  # stable: the thread's own order is kept
    head = _lead_item(lead) if lead is not None else {"phone": phone, "status": None}
    head["notes"] = lead["notes"] if lead is not None else None
    head["opted_out"] = None if stopped is None else {"at": iso_local(stopped[0]), "source": stopped[1]}
    return {"lead": head, "timeline": [item for _, _, item in items]}


# -- the dialer view --------------------------------------------------------------------------

def dialer_view(store: Store, limit: int = 200) -> dict[str, Any]:
    """The dialer's state: open jobs (next due first, with the lead's name), the latest
    attempts with their outcomes (newest first), and the attempts' outcomes counted over the
    last 7 days."""
    from leads import dialjobs

    j, t = schema.dial_jobs, schema.leads
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=7)
    named = sa.select(j, t.c.name).select_from(j.outerjoin(t, t.c.phone == j.c.phone))
    with store.engine.connect() as conn:
        open_rows = conn.execute(
            named.where(j.c.state.in_(dialjobs.OPEN_STATES)).order_by(j.c.due_at, j.c.id).limit(limit)
        ).mappings().all()
        recent_rows = conn.execute(
            named.where(j.c.updated_at >= since).order_by(j.c.updated_at.desc(), j.c.id.desc()).limit(limit)
        ).mappings().all()
    queue = [{**dialjobs.job_json(r), "name": r["name"], "attempt": r["attempts"] + 1} for r in open_rows]
    attempts: list[dict[str, Any]] = []
    for r in recent_rows:
        job = dialjobs.job_json(r)
        for item in _dial_items([job]):
            if item["kind"] == "dial":
                attempts.append({**item, "phone": r["phone"], "name": r["name"], "reason": r["reason"]})
    attempts.sort(key=_order, reverse=True)
    outcomes: dict[str, int] = {}
    for a in attempts:
        if _order(a) >= since.timestamp():
            outcomes[a["outcome"] or "unknown"] = outcomes.get(a["outcome"] or "unknown", 0) + 1
    return {"available": True, "queue": queue, "recent": attempts[:limit], "outcomes": outcomes}


def lead_messages(store: Store, phone: str, limit: int = 500) -> list[dict[str, Any]]:
    """The lead's WhatsApp thread both ways, oldest first (leads.whatsapp.thread): for the
    lead page and GET /api/leads/{phone}. An unreadable number has none."""
    from leads.whatsapp import thread

    try:
        number = fields.phone(phone)
    except fields.InvalidField:
        return []
    return thread(store, number, limit) if number else []
