"""Pure lead rules: how a new call's lead merges into the stored one, and its JSON shape."""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from dialog.base import LeadState
from leads import fields
from leads.schema import utc

JERUSALEM = ZoneInfo("Asia/Jerusalem")
SLOT_FIELDS = ("name", "area", "property_type", "rooms", "budget_ils", "deal", "timeframe")
TEXT_SLOTS = ("name", "area", "property_type", "timeframe")  # each cut to fields.SLOT_TEXT_MAX


def check_lead(lead: LeadState) -> None:
    """Raise :class:`~leads.fields.InvalidField` for a value no store may keep (before any SQL)."""
    s = lead.slots
    fields.rooms(s.rooms)
    fields.budget(s.budget_ils)
    fields.deal(s.deal)
    for name in TEXT_SLOTS:
        fields.text(getattr(s, name), fields.SLOT_TEXT_MAX, name)
    fields.text(lead.status, fields.OUTCOME_MAX, "status")


def merge_lead(stored: Mapping[str, Any] | None, lead: LeadState) -> dict[str, Any]:
    """Column values for the lead row after this call's state.

    A repeat caller's fresh conversation starts empty, so a slot it has not (yet) filled
    keeps the stored value, and its initial "new" status does not downgrade an earlier
    "qualified" / "meeting_booked"; any other status the brain reached (including "lost")
    is the newest word and replaces the stored one.
    """
    stored = stored or {}
    values: dict[str, Any] = {}
    for name in SLOT_FIELDS:
        new = getattr(lead.slots, name)
        if isinstance(new, str):
            new = fields.text(new, fields.SLOT_TEXT_MAX, name)
        values[name] = new if new is not None else stored.get(name)
    values["phone_confirmed"] = bool(lead.slots.phone_confirmed or stored.get("phone_confirmed"))
    if lead.status == "new" and stored.get("status"):
        values["status"] = stored["status"]
    else:
        values["status"] = fields.text(lead.status, fields.OUTCOME_MAX, "status")
    meeting = lead.meeting_at.astimezone(dt.timezone.utc) if lead.meeting_at else None
    values["meeting_at"] = meeting if meeting is not None else stored.get("meeting_at")
    return values


def iso_local(value: dt.datetime | None) -> str | None:
    value = utc(value)
    return value.astimezone(JERUSALEM).isoformat() if value else None


def lead_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """design.md's /api/leads item."""
    rooms = row.get("rooms")
    return {
        "phone": row["phone"],
        "name": row.get("name"),
        "area": row.get("area"),
        "property_type": row.get("property_type"),
        "rooms": rooms,
        "budget_ils": row.get("budget_ils"),
        "deal": row.get("deal"),  # "buy" | "rent" (budget_ils is then per month) | null
        "timeframe": row.get("timeframe"),
        "status": row.get("status") or "new",
        "meeting_at": iso_local(row.get("meeting_at")),
        "updated_at": iso_local(row.get("updated_at")),
        # the WhatsApp brain could not answer this lead: a person must (migration 6)
        "needs_person": bool(row.get("needs_person")),
        "needs_person_reason": row.get("needs_person"),
        "needs_person_at": iso_local(row.get("needs_person_at")),
    }


def whatsapp_fallback_summary(lead: LeadState) -> str:
    """The follow-up text when the session gave none (a crash mid-call): the slots as known.

    The brain's own summary (Brain.summary()) replaces it whenever the session passes one.
    """
    s = lead.slots
    parts = [
        ("שם", s.name), ("אזור", s.area), ("סוג נכס", s.property_type),
        ("חדרים", f"{s.rooms:g}" if s.rooms is not None else None),
        ("עסקה", {"buy": "קנייה", "rent": "שכירות"}.get(s.deal or "")),
        ("תקציב", f"{s.budget_ils:,} ₪{' לחודש' if s.deal == 'rent' else ''}" if s.budget_ils is not None else None),
        ("מועד", s.timeframe),
    ]
    lines = ["תודה ששוחחת עם AgentLocator! סיכום השיחה:"]
    lines += [f"{label}: {value}" for label, value in parts if value]
    if lead.meeting_at is not None:
        lines.append(f"פגישה: {lead.meeting_at.astimezone(JERUSALEM):%d/%m %H:%M}")
    lines.append("נציג יחזור אליך בהקדם.")
    return "\n".join(lines)
