"""The do-not-call list: a lead who opted out is never called nor messaged again.

Anything that reaches a lead (the dialer before ``calls.create``, WhatsApp before a send)
asks :func:`is_opted_out`; anything that hears "stop" (WhatsApp's STOP / "הסר", the operator's
button, the API) calls :func:`opt_out`, which also cancels the lead's pending dial jobs in the
same transaction, so a call already queued for later never goes out.

Both are blocking, like every Store method: from trio, run them in the store's threads::

    await store.run(opt_out, store, phone, "whatsapp")
    if await store.run(is_opted_out, store, phone): ...

Phone numbers are read like everywhere in the store (leads.fields.phone: E.164, Israeli by
default); a ``whatsapp:`` prefix (Twilio's WhatsApp addresses) is accepted. An unreadable
number raises :class:`leads.fields.InvalidField` (field ``phone``).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from leads import fields, schema
from leads.store import Store, _dialect_insert

SOURCE_MAX = 64


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def normalise(phone: str) -> str:
    """E.164 of ``phone`` (``whatsapp:`` prefix allowed); InvalidField if it is none."""
    if isinstance(phone, str) and phone.startswith("whatsapp:"):
        phone = phone[len("whatsapp:"):]
    number = fields.phone(phone)
    if not number:
        raise fields.InvalidField("phone", "no phone number", phone)
    return number


def opt_out(store: Store, phone: str, source: str) -> None:
    """Put ``phone`` on the do-not-call list (idempotent: the first opt-out's source and time
    are kept) and cancel its pending dial jobs."""
    number = normalise(phone)
    source = (fields.text(source, SOURCE_MAX, "source") or "unknown").strip() or "unknown"
    with store.engine.begin() as conn:
        add(conn, number, source, _now())


def add(conn: sa.Connection, number: str, source: str, now: dt.datetime) -> None:
    """:func:`opt_out` inside the caller's transaction (``number`` already E.164): the store
    calls it at the end of a call in which the lead asked never to be called again."""
    now = now.astimezone(dt.timezone.utc)
    insert = _dialect_insert(conn)(schema.do_not_call).values(phone=number, source=source, created_at=now)
    conn.execute(insert.on_conflict_do_nothing(index_elements=["phone"]))
    j = schema.dial_jobs
    conn.execute(
        j.update().where(j.c.phone == number, j.c.state == "pending").values(
            state="cancelled", outcome="opted_out", due_at=None, updated_at=now)
    )


def is_opted_out(store: Store, phone: str) -> bool:
    """Whether ``phone`` is on the do-not-call list."""
    number = normalise(phone)
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.select(schema.do_not_call.c.phone).where(schema.do_not_call.c.phone == number)
        ).first()
    return found is not None


def opted_out_at(store: Store, phone: str) -> tuple[dt.datetime, str] | None:
    """When and through what ``phone`` opted out, or None."""
    number = normalise(phone)
    d = schema.do_not_call
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(d.c.created_at, d.c.source).where(d.c.phone == number)).first()
    return None if row is None else (schema.utc(row.created_at), row.source)  # type: ignore[return-value]
