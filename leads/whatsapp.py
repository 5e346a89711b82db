"""Two-way WhatsApp in the store: a lead's thread, its conversation state, the 24-hour window.

Blocking (each function is one short transaction), like every Store method: from trio, run
them in the store's threads (``await store.run(fn, store, ...)``).

- :func:`receive`: a message from Twilio's webhook, stored once per MessageSid (Twilio
  retries); an unknown number becomes a lead (source ``whatsapp``). The rules' answer, when
  they have one at once, is applied in the same transaction (one durable commit per message).
- :func:`apply_decision`: an answer found later (an opt-out, done first; the OpenAI brain) in
  one transaction: the thread's state, the meeting (booked, moved, cancelled), the
  ``needs_person`` flag, and the reply queued in the outbox (key ``wa-reply:<MessageSid>``:
  one reply per message, however often Twilio retries).
- :func:`thread`: the lead's messages both ways, oldest first, with our delivery states.
- :func:`send_mode`: "text" inside WhatsApp's 24-hour customer service window (since the
  lead's last message), "template" outside it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

from dialog.schedule import TZ
from dialog.whatsapp import Decision, Thread
from leads import fields, schema
from leads.lead import iso_local
from leads.store import Store, _dialect_insert

SERVICE_WINDOW = dt.timedelta(hours=24)  # WhatsApp's customer service window
BODY_MAX = 1600  # a WhatsApp message body (Twilio's limit)
PROFILE_NAME_MAX = 100
REPLY_PREFIX = "wa-reply:"
OPT_OUT_PREFIX = "wa-optout:"  # the one message an opted-out lead still gets: the confirmation
SOURCE = "whatsapp"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def address_phone(address: str) -> str:
    """``whatsapp:+972501234567`` (Twilio's From) -> E.164; InvalidField if it is none."""
    value = address[len("whatsapp:"):] if isinstance(address, str) and address.startswith("whatsapp:") else address
    phone = fields.phone(value, "From")
    if not phone:
        raise fields.InvalidField("From", "no phone number", address)
    return phone


def send_mode(last_inbound_at: dt.datetime | None, now: dt.datetime) -> str:
    """"text" while the lead's last message is under 24 hours old, else "template"."""
    last = schema.utc(last_inbound_at)
    if last is not None and now - last < SERVICE_WINDOW:
        return "text"
    return "template"


@dataclass(frozen=True, slots=True)
class Inbound:
    message_sid: str
    phone: str  # E.164
    body: str
    num_media: int = 0
    profile_name: str | None = None

    @classmethod
    def from_form(cls, params: dict[str, str]) -> "Inbound":
        """Twilio's webhook fields, checked (InvalidField names the bad one)."""
        sid = params.get("MessageSid") or params.get("SmsMessageSid") or ""
        if not fields.message_sid(sid):
            raise fields.InvalidField("MessageSid", "not a Twilio MessageSid (SM/MM + 32 hex)", sid)
        try:
            media = int(params.get("NumMedia") or 0)
        except ValueError:
            raise fields.InvalidField("NumMedia", "not a number", params.get("NumMedia")) from None
        return cls(
            message_sid=sid, phone=address_phone(params.get("From") or ""),
            body=fields.text(params.get("Body") or "", BODY_MAX, "Body") or "",
            num_media=max(0, min(media, 10)),
            profile_name=fields.text(params.get("ProfileName"), PROFILE_NAME_MAX, "ProfileName"),
        )


@dataclass(frozen=True, slots=True)
class Received:
    thread: Thread  # the thread before this message
    new_lead: bool
    last_inbound_before: dt.datetime | None
    opted_out: bool  # the number is on the do-not-call list
    decision: Decision | None = None  # the answer, when it was applied in the same transaction
    reply_key: str | None = None  # the outbox item of that answer
    again: bool = False  # Twilio retried a message stored but never answered (a crash between)


def _thread_of(conn: sa.Connection, phone: str) -> tuple[Thread, dt.datetime | None]:
    t, lead = schema.whatsapp_threads, schema.leads
    row = conn.execute(sa.select(t).where(t.c.phone == phone)).mappings().first()
    lead_row = conn.execute(sa.select(lead.c.meeting_at, lead.c.name).where(lead.c.phone == phone)).first()
    # The schedule reads hours and weekdays in Israel's time: every time is handed over in it.
    meeting = _local(lead_row.meeting_at) if lead_row is not None else None
    name = lead_row.name if lead_row is not None else None
    if row is None:
        return Thread(meeting_at=meeting, name=name), None
    offered = tuple(_local(dt.datetime.fromisoformat(v)) for v in (row["offered"] or []))
    return Thread(meeting_at=meeting, phase=row["phase"] or "idle", offered=offered,  # type: ignore[arg-type]
                  chosen=_local(row["chosen"]), misses=row["misses"] or 0, name=name), \
        schema.utc(row["last_inbound_at"])


def _local(value: dt.datetime | None) -> dt.datetime | None:
    value = schema.utc(value)
    return value.astimezone(TZ) if value is not None else None


def _stored(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC for a DateTime column (SQLite keeps the wall time and drops the zone)."""
    return value.astimezone(dt.timezone.utc) if value is not None else None


# (thread, opted_out) -> the answer now (applied in the same transaction), or None: the
# caller answers later with apply_decision (an opt-out, the OpenAI brain: work that must not
# run inside the store's write transaction).
Decide = Callable[[Thread, bool], "Decision | None"]


def receive(store: Store, msg: Inbound, now: dt.datetime | None = None, decide: Decide | None = None,
            brain: str = "rules") -> Received | None:
    """Store one inbound message and, when ``decide`` answers at once, its answer — one
    durable transaction for the usual message. None: this MessageSid was answered already
    (Twilio retries); a message stored but never answered (the process died in between) is
    handed back for an answer (``again``)."""
    now = now or _now()
    m, t, lead, dnc = schema.whatsapp_messages, schema.whatsapp_threads, schema.leads, schema.do_not_call
    with store.engine.begin() as conn:
        inserted = conn.execute(
            _dialect_insert(conn)(m).values(
                message_sid=msg.message_sid, phone=msg.phone, body=msg.body, num_media=msg.num_media,
                profile_name=msg.profile_name, received_at=now,
            ).on_conflict_do_nothing(index_elements=["message_sid"]).returning(m.c.id)
        ).first()
        again = False
        if inserted is None:
            stored = conn.execute(sa.select(m.c.action).where(m.c.message_sid == msg.message_sid)).first()
            if stored is None or stored.action is not None:
                return None
            again = True
        values: dict[str, Any] = {"phone": msg.phone, "created_at": now, "updated_at": now}
        if "source" in lead.c:  # leads.source (migration 5): where a lead flowed in from
            values["source"] = SOURCE
        new_lead = conn.execute(
            _dialect_insert(conn)(lead).values(**values).on_conflict_do_nothing(index_elements=["phone"])
            .returning(lead.c.phone)
        ).first() is not None
        if not new_lead:
            conn.execute(lead.update().where(lead.c.phone == msg.phone).values(updated_at=now))
        # The lead's row is locked from here to the commit (PostgreSQL: the UPDATE / INSERT
        # holds it; SQLite: BEGIN IMMEDIATE holds the database), so two messages of one lead
        # reaching two instances at once are answered in turn, each on the thread as the
        # other left it.
        thread, last = _thread_of(conn, msg.phone)
        conn.execute(
            _dialect_insert(conn)(t).values(phone=msg.phone, last_inbound_at=now, phase="idle", misses=0,
                                            updated_at=now)
            .on_conflict_do_update(index_elements=["phone"], set_={"last_inbound_at": now, "updated_at": now})
        )
        opted_out = conn.execute(sa.select(dnc.c.phone).where(dnc.c.phone == msg.phone)).first() is not None
        decision = decide(thread, opted_out) if decide is not None else None
        key = _apply(conn, msg, decision, brain, now) if decision is not None else None
        return Received(thread, new_lead, last, opted_out, decision, key, again)


def record_inbound(store: Store, msg: Inbound, now: dt.datetime | None = None) -> Received | None:
    """Store one inbound message, unanswered (None if this MessageSid is stored already)."""
    return receive(store, msg, now)


def apply_decision(
    store: Store, msg: Inbound, decision: Decision, brain: str, now: dt.datetime | None = None,
) -> str | None:
    """The brain's answer to ``msg``, stored in one transaction; returns the outbox key of the
    reply queued (None when there is nothing to send)."""
    with store.engine.begin() as conn:
        return _apply(conn, msg, decision, brain, now or _now())


def _apply(conn: sa.Connection, msg: Inbound, decision: Decision, brain: str, now: dt.datetime) -> str | None:
    th, lead, m, o = schema.whatsapp_threads, schema.leads, schema.whatsapp_messages, schema.outbox
    state = decision.thread
    conn.execute(th.update().where(th.c.phone == msg.phone).values(
        phase=state.phase, offered=[_stored(w).isoformat() for w in state.offered] or None, chosen=_stored(state.chosen),
        misses=state.misses, updated_at=now,
    ))
    values: dict[str, Any] = {"updated_at": now}
    current = conn.execute(sa.select(lead.c.status, lead.c.meeting_at).where(lead.c.phone == msg.phone)).first()
    if decision.action == "book" and decision.meeting_at is not None:
        values.update(meeting_at=decision.meeting_at.astimezone(dt.timezone.utc), status="meeting_booked")
    elif decision.action == "cancel" and current is not None and current.meeting_at is not None:
        values["meeting_at"] = None
        if current.status == "meeting_booked":
            values["status"] = "qualified"
    if decision.needs_person:
        values.update(needs_person=fields.text(decision.needs_person, fields.ERROR_TEXT_MAX, "needs_person"),
                      needs_person_at=now)
    conn.execute(lead.update().where(lead.c.phone == msg.phone).values(**values))
    key = None
    if decision.reply:
        key = (OPT_OUT_PREFIX if decision.opt_out else REPLY_PREFIX) + msg.message_sid
        conn.execute(
            _dialect_insert(conn)(o).values(
                key=key, call_sid="", phone=msg.phone, channel="whatsapp",
                body=fields.text(decision.reply, BODY_MAX, "reply") or "", state="pending", attempts=0,
                next_attempt_at=now, created_at=now, updated_at=now,
            ).on_conflict_do_nothing(index_elements=["key"])
        )
    conn.execute(m.update().where(m.c.message_sid == msg.message_sid).values(
        action=decision.action, brain=brain, reply_key=key))
    return key


def last_inbound_at(store: Store, phone: str) -> dt.datetime | None:
    t = schema.whatsapp_threads
    with store.engine.connect() as conn:
        return schema.utc(conn.execute(sa.select(t.c.last_inbound_at).where(t.c.phone == phone)).scalar())


def clear_needs_person(store: Store, phone: str) -> bool:
    """An operator took the thread: the flag goes down. Returns whether it was up."""
    lead = schema.leads
    with store.engine.begin() as conn:
        return conn.execute(
            lead.update().where(lead.c.phone == phone, lead.c.needs_person.is_not(None))
            .values(needs_person=None, needs_person_at=None, updated_at=_now())
        ).rowcount > 0


def thread(store: Store, phone: str, limit: int = 500) -> list[dict[str, Any]]:
    """The lead's WhatsApp messages both ways, oldest first: theirs (``direction`` "in", with
    what the brain did) and ours (``direction`` "out": call follow-ups and replies, with the
    delivery state Twilio's status callbacks moved forward, and whether it went as free text
    or as the template)."""
    m, o = schema.whatsapp_messages, schema.outbox
    with store.engine.connect() as conn:
        ins = conn.execute(sa.select(m).where(m.c.phone == phone).order_by(m.c.id.desc()).limit(limit)).mappings().all()
        outs = conn.execute(
            sa.select(o).where(o.c.phone == phone, o.c.channel == "whatsapp").order_by(o.c.id.desc()).limit(limit)
        ).mappings().all()
    # Oldest first; at the same instant (a frozen clock, a fast reply) a reply comes right
    # after the message it answers.
    items: list[tuple[dt.datetime, int, int, dict[str, Any]]] = []
    order = {r["message_sid"]: r["id"] for r in ins}
    for r in ins:
        at = schema.utc(r["received_at"])
        items.append((at, r["id"], 0, {
            "direction": "in", "at": iso_local(at), "body": r["body"], "message_sid": r["message_sid"],
            "num_media": r["num_media"], "profile_name": r["profile_name"], "action": r["action"],
            "brain": r["brain"],
        }))
    for r in outs:
        at = schema.utc(r["created_at"])
        key = r["key"]
        kind = "followup" if key.startswith("whatsapp:") else "reply" if key.startswith((REPLY_PREFIX, OPT_OUT_PREFIX)) \
            else "other"
        answered = key.split(":", 1)[1] if kind == "reply" else None
        items.append((at, order.get(answered or "", 0), 1, {
            "direction": "out", "at": iso_local(at), "body": r["body"], "message_sid": r["provider_id"],
            "kind": kind, "call_sid": r["call_sid"] or None, "state": r["state"], "sent_as": r["sent_as"],
            "attempts": r["attempts"], "error": r["last_error"], "updated_at": iso_local(r["updated_at"]),
            "in_reply_to": answered,
        }))
    items.sort(key=lambda item: item[:3])
    return [item[3] for item in items[-limit:]]
