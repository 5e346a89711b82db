"""A lead's meeting changed outside the call (a WhatsApp reply: "can we move it to Thursday?",
"cancel it"): by the lead's phone, on the :class:`leads.meetings.Meetings` the app holds as
``app.wiring.meetings``. Each also updates the lead's row (``meeting_at``, ``status``), so
the dashboard and ``/api/leads`` say the same as the calendar.

    from leads import lead_meetings
    windows = await lead_meetings.next_windows(meetings, phone, now)        # what to offer
    outcome = await lead_meetings.reschedule(meetings, phone, windows[0])   # "booked" | "taken" | "offline" | None
    cancelled = await lead_meetings.cancel(meetings, phone)                 # True / False

Outcomes: "booked" (in the calendar), "taken" (that time is busy now: offer ``next_windows``
again), "offline" (the calendar did not answer: kept in our database, a CALENDAR line logged),
None (the lead has no booked meeting).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dialog import schedule
from leads import schema
from leads.meetings import Meeting, Meetings, Outcome


async def current(meetings: Meetings, phone: str) -> Meeting | None:
    """The lead's booked meeting, if any."""
    return await meetings.active_for(phone)


async def next_windows(meetings: Meetings, phone: str, now: dt.datetime, count: int = 2) -> list[dt.datetime]:
    """Free windows in the calendar of the lead's realtor (the one of their meeting, else the
    one their area would get), the current meeting's time left out."""
    meeting = await meetings.active_for(phone)
    realtor = meetings.realtors.by_name(meeting.realtor) if meeting else None
    if realtor is None:
        realtor = meetings.realtors.candidates(await _area(meetings, phone))[0] if meetings.realtors else None
    exclude = (meeting.starts_at.astimezone(schedule.TZ),) if meeting else ()
    if realtor is None:
        return schedule.offer_windows(now, count, exclude=exclude, rules=meetings.rules)
    return await meetings.free_windows(realtor, now, count, exclude=exclude)


async def reschedule(meetings: Meetings, phone: str, starts_at: dt.datetime) -> Outcome | None:
    meeting = await meetings.active_for(phone)
    if meeting is None:
        return None
    outcome = await meetings.reschedule(meeting.uid, starts_at)
    if outcome != "taken":
        await meetings.store.run(_set_lead, meetings, phone, starts_at)
    return outcome


async def cancel(meetings: Meetings, phone: str) -> bool:
    meeting = await meetings.active_for(phone)
    if meeting is None or not await meetings.cancel(meeting.uid):
        return False
    await meetings.store.run(_set_lead, meetings, phone, None)
    return True


def _set_lead(meetings: Meetings, phone: str, at: dt.datetime | None) -> None:
    t = schema.leads
    now = dt.datetime.now(dt.timezone.utc)
    values = {"meeting_at": at.astimezone(dt.timezone.utc) if at else None, "updated_at": now,
              "status": "meeting_booked" if at else "qualified"}
    with meetings.store.engine.begin() as conn:
        conn.execute(t.update().where(t.c.phone == phone).values(**values))


async def _area(meetings: Meetings, phone: str) -> str | None:
    def read() -> str | None:
        with meetings.store.engine.connect() as conn:
            return conn.execute(sa.select(schema.leads.c.area).where(schema.leads.c.phone == phone)).scalar()

    return await meetings.store.run(read)
