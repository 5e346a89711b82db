"""Read side for the dashboard: rows in the JSON shapes of design.md's contract.

Blocking (one short read each); the dashboard runs them in worker threads.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

import sqlalchemy as sa

from leads import fields, schema
from leads.lead import iso_local, lead_json
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


def list_leads(store: Store, limit: int = 500) -> list[dict[str, Any]]:
    t = schema.leads
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.updated_at.desc()).limit(limit)).mappings().all()
    return [lead_json(r) for r in rows]


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


def metric_series(store: Store, limit: int = 500) -> list[dict[str, Any]]:
    """Finished calls, oldest first, as chart points."""
    c = schema.calls
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(c).where(c.c.ended_at.is_not(None)).order_by(c.c.ended_at.desc()).limit(limit)
        ).mappings().all()
    return [call_figures(r) for r in reversed(rows)]


def lead_messages(store: Store, phone: str, limit: int = 500) -> list[dict[str, Any]]:
    """The lead's WhatsApp thread both ways, oldest first (leads.whatsapp.thread): for the
    lead page and GET /api/leads/{phone}. An unreadable number has none."""
    from leads.whatsapp import thread

    try:
        number = fields.phone(phone)
    except fields.InvalidField:
        return []
    return thread(store, number, limit) if number else []
