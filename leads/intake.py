"""Leads that flow in: a web form, Facebook Lead Ads, any system that posts to the intake API.

:func:`parse` checks a submission (JSON or form fields, every value possibly a string) and
raises :class:`~leads.fields.InvalidField` naming the first bad field, before anything is
stored. :func:`record` stores it in one transaction: the lead (created, or the existing one
updated — one lead per phone number, never a duplicate), a ``lead_intake`` row (what came
from where), and a dial job for the speed-to-lead dialer (none for an opted-out number, nor
when a call to that lead is already queued). The sender's Idempotency-Key makes a retried
delivery return the first answer; the same key with different content is a conflict.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import sqlalchemy as sa

from leads import dialjobs, fields, schema
from leads.hours import CallingHours
from leads.lead import iso_local
from leads.store import Store, _dialect_insert

SOURCE_MAX = 64
NOTES_MAX = 2000
KEY_MAX = 160
EXTRA_MAX = 20  # other fields kept on the intake row (utm_source, form id ...), each cut to 200
FIELDS = ("phone", "name", "area", "property_type", "rooms", "budget_ils", "deal", "timeframe", "source", "notes")
_DEALS = {"buy": "buy", "rent": "rent", "קנייה": "buy", "קניה": "buy", "לקנות": "buy", "שכירות": "rent",
          "להשכיר": "rent", "לשכור": "rent", "sale": "buy", "purchase": "buy", "rental": "rent"}
_AMOUNT_JUNK = re.compile(r"[\s,₪]|ש\"ח|nis|ils", re.IGNORECASE)


class Conflict(Exception):
    """The Idempotency-Key was used before for a different submission."""


@dataclass(frozen=True, slots=True)
class Intake:
    phone: str  # E.164
    source: str
    name: str | None = None
    area: str | None = None
    property_type: str | None = None
    rooms: float | None = None
    budget_ils: int | None = None
    deal: str | None = None
    timeframe: str | None = None
    notes: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def slots(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "area", "property_type", "rooms", "budget_ils", "deal",
                                              "timeframe") if getattr(self, k) is not None}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(data: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise fields.InvalidField(name, "not text", value)
    value = " ".join(value.split()) if name != "notes" else value.strip()
    if len(value) > limit:
        raise fields.InvalidField(name, f"longer than {limit} characters", value)
    return value


def valid_phone(value: Any, name: str = "phone") -> str:
    """E.164 of a callable number (Israeli when written locally: "050-123-4567"), else InvalidField."""
    if _blank(value):
        raise fields.InvalidField(name, "missing", value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(int(value))
    # A possible number (its length and shape for its country), as the store reads every
    # number: phonenumbers' stricter "valid" rejects whole Israeli mobile ranges it does not
    # know as allocated (050-1xx-xxxx), which real forms do send.
    number = fields.phone(value, name)
    if not number:
        raise fields.InvalidField(name, "not a phone number we can call", value)
    return number


def _rooms(value: Any) -> float | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise fields.InvalidField("rooms", "not a number", value) from None
    return fields.rooms(value)


def _budget(value: Any) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        cleaned = _AMOUNT_JUNK.sub("", value)
        if not cleaned.isdigit():
            raise fields.InvalidField("budget_ils", "not a whole number of shekels", value)
        value = int(cleaned)
    return fields.budget(value)


def _deal(value: Any) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str) or value.strip().lower() not in _DEALS:
        raise fields.InvalidField("deal", "not buy or rent", value)
    return _DEALS[value.strip().lower()]


def parse(data: Mapping[str, Any], default_source: str | None = None) -> Intake:
    """A submission, checked: InvalidField (naming the field) on the first bad value."""
    phone = valid_phone(data.get("phone"))
    source = _text(data, "source", SOURCE_MAX) or default_source
    if not source:
        raise fields.InvalidField("source", "missing (where the lead came from, e.g. web_form)", None)
    extra: dict[str, str] = {}
    for key, value in data.items():
        if key not in FIELDS and len(extra) < EXTRA_MAX and isinstance(key, str) and isinstance(value, (str, int, float)):
            extra[key[:64]] = str(value)[:200]
    return Intake(
        phone=phone, source=source, name=_text(data, "name", fields.SLOT_TEXT_MAX),
        area=_text(data, "area", fields.SLOT_TEXT_MAX), property_type=_text(data, "property_type", fields.SLOT_TEXT_MAX),
        rooms=_rooms(data.get("rooms")), budget_ils=_budget(data.get("budget_ils")), deal=_deal(data.get("deal")),
        timeframe=_text(data, "timeframe", fields.SLOT_TEXT_MAX), notes=_text(data, "notes", NOTES_MAX), extra=extra,
    )


@dataclass(frozen=True, slots=True)
class Recorded:
    phone: str
    created: bool  # a new lead (else an existing one was updated)
    dial: str  # queued | already_queued | opted_out
    job_id: int | None
    due_at: dt.datetime | None
    intake_id: int
    replayed: bool = False  # the Idempotency-Key was seen: this is the first answer again

    def json(self) -> dict[str, Any]:
        return {"phone": self.phone, "created": self.created, "replayed": self.replayed, "intake_id": self.intake_id,
                "dial": {"status": self.dial, "job_id": self.job_id, "due_at": iso_local(self.due_at)}}


def _payload(intake: Intake) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(intake), ensure_ascii=False))


def _replay(conn: sa.Connection, key: str, payload: dict[str, Any]) -> Recorded:
    li, j = schema.lead_intake, schema.dial_jobs
    row = conn.execute(sa.select(li).where(li.c.idempotency_key == key)).mappings().one()
    if (row["payload"] or {}).get("intake") != payload:
        raise Conflict(f"Idempotency-Key {key[:40]!r} was used for a different submission")
    job = conn.execute(sa.select(j).where(j.c.id == row["dial_job_id"])).mappings().first() if row["dial_job_id"] else None
    dial = (row["payload"] or {}).get("dial") or ("queued" if job else "opted_out")
    return Recorded(row["phone"], row["created_lead"], dial, row["dial_job_id"],
                    schema.utc(job["due_at"]) if job else None, row["id"], replayed=True)


def record(store: Store, intake: Intake, hours: CallingHours, idempotency_key: str | None = None,
           now: dt.datetime | None = None) -> Recorded:
    """Store one submission (blocking; one transaction). Raises :class:`Conflict`."""
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    key = fields.text(idempotency_key.strip(), KEY_MAX, "idempotency_key") if idempotency_key and idempotency_key.strip() else None
    payload = _payload(intake)
    li, leads = schema.lead_intake, schema.leads
    with store.engine.begin() as conn:
        row_id = None
        if key is not None:
            # Claim the key first: a concurrent delivery with the same key waits on it, then replays.
            insert = _dialect_insert(conn)(li).values(
                idempotency_key=key, phone=intake.phone, source=intake.source, payload={"intake": payload},
                created_lead=False, received_at=now)
            row_id = conn.execute(insert.on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(li.c.id)).scalar()
            if row_id is None:
                return _replay(conn, key, payload)
        insert = _dialect_insert(conn)(leads).values(phone=intake.phone, created_at=now, updated_at=now,
                                                     source=intake.source)
        created = conn.execute(insert.on_conflict_do_nothing(index_elements=["phone"]).returning(leads.c.phone)).first() is not None
        lead = conn.execute(sa.select(leads).where(leads.c.phone == intake.phone).with_for_update()).mappings().one()
        values: dict[str, Any] = {**intake.slots(), "updated_at": now}
        if intake.notes:
            values["notes"] = intake.notes
        if not lead["source"]:
            values["source"] = intake.source  # the first source stays the lead's; each one is on lead_intake
        conn.execute(leads.update().where(leads.c.phone == intake.phone).values(**values))
        job_id, dial = dialjobs.enqueue(conn, intake.phone, "intake", hours.next_allowed(now), now=now)
        due = None
        if job_id is not None:
            due = schema.utc(conn.execute(sa.select(schema.dial_jobs.c.due_at).where(
                schema.dial_jobs.c.id == job_id)).scalar())
        stored = {"intake": payload, "dial": dial}
        if row_id is None:
            row_id = conn.execute(li.insert().values(
                phone=intake.phone, source=intake.source, payload=stored, created_lead=created, dial_job_id=job_id,
                received_at=now).returning(li.c.id)).scalar_one()
        else:
            conn.execute(li.update().where(li.c.id == row_id).values(payload=stored, created_lead=created,
                                                                      dial_job_id=job_id))
    return Recorded(intake.phone, created, dial, job_id, due, row_id)


def intake_for(store: Store, phone: str, limit: int = 50) -> list[dict[str, Any]]:
    li = schema.lead_intake
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(li).where(li.c.phone == phone).order_by(li.c.id.desc()).limit(limit)).mappings().all()
    return [{"id": r["id"], "source": r["source"], "received_at": iso_local(r["received_at"]),
             "created_lead": r["created_lead"], "dial_job_id": r["dial_job_id"],
             "fields": (r["payload"] or {}).get("intake")} for r in rows]
