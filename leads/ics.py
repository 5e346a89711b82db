"""A meeting as iCalendar text (RFC 5545): the event put in the realtor's CalDAV calendar and
the .ics file the lead's WhatsApp link downloads. Pure: data in, text out.

Times carry ``TZID=Asia/Jerusalem`` with its VTIMEZONE (made by ``icalendar`` from the zone
database), so a calendar shows 10:00 local on both sides of a daylight-saving change.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

TZ = ZoneInfo("Asia/Jerusalem")
PRODID = "-//AgentLocator//meetings//EN"


@dataclass(frozen=True, slots=True)
class MeetingEvent:
    uid: str
    starts_at: dt.datetime  # aware
    ends_at: dt.datetime
    realtor: str = ""
    name: str | None = None
    phone: str | None = None
    area: str | None = None
    property_type: str | None = None
    rooms: float | None = None
    budget_ils: int | None = None
    deal: str | None = None
    call_url: str | None = None  # the call's page in the dashboard
    sequence: int = 0  # bumped on every reschedule (RFC 5545 3.8.7.4)
    extra: dict[str, Any] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        """What the meetings table keeps of the event (JSON)."""
        return {
            "name": self.name, "area": self.area, "property_type": self.property_type, "rooms": self.rooms,
            "budget_ils": self.budget_ils, "deal": self.deal, "call_url": self.call_url,
            "sequence": self.sequence,
        }


def title(event: MeetingEvent) -> str:
    who = event.name or event.phone or "lead"
    where = f" – {event.area}" if event.area else ""
    return f"AgentLocator: {who}{where}"


def description(event: MeetingEvent) -> str:
    lines = []
    if event.name:
        lines.append(f"Name: {event.name}")
    if event.phone:
        lines.append(f"Phone: {event.phone}")
    if event.area:
        lines.append(f"Area: {event.area}")
    if event.property_type:
        rooms = f", {event.rooms:g} rooms" if event.rooms else ""
        lines.append(f"Looking for: {event.property_type}{rooms}")
    if event.budget_ils:
        per = " a month" if event.deal == "rent" else ""
        lines.append(f"Budget: up to {event.budget_ils:,} ILS{per}")
    if event.deal:
        lines.append(f"Deal: {event.deal}")
    if event.call_url:
        lines.append(f"Call: {event.call_url}")
    return "\n".join(lines)


def to_ics(event: MeetingEvent, stamp: dt.datetime, method: str | None = None) -> str:
    """One VCALENDAR with the VEVENT and the VTIMEZONE it refers to."""
    if event.starts_at.tzinfo is None or event.ends_at.tzinfo is None:
        raise ValueError("meeting times must be timezone-aware")
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    ev = icalendar.Event()
    ev.add("uid", event.uid)
    ev.add("dtstamp", stamp.astimezone(dt.timezone.utc))
    ev.add("dtstart", event.starts_at.astimezone(TZ))
    ev.add("dtend", event.ends_at.astimezone(TZ))
    ev.add("sequence", event.sequence)
    ev.add("summary", title(event))
    ev.add("description", description(event))
    if event.area:
        ev.add("location", event.area)
    if event.call_url:
        ev.add("url", event.call_url)
    ev.add("status", "CONFIRMED")
    ev.add("transp", "OPAQUE")
    cal.add_component(ev)
    cal.add_missing_timezones()
    return cal.to_ical().decode("utf-8")
