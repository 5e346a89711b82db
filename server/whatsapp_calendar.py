"""WhatsApp answers that touch the realtor's calendar (README "Two-way WhatsApp").

The rules (dialog.whatsapp) stay pure; this is the thin shell around them for the answers
that need a calendar, applied by server.whatsapp after the message is stored:

- before the message is decided: the busy intervals of the lead's realtor (their meeting's,
  else the first their area gets; ``Meetings.busy``: the cache the background refresh keeps
  warm, else one fetch bounded by CALENDAR_TIMEOUT_SECONDS), so the rules offer only windows
  free in their calendar, inside the message's one transaction (a model's offer is made
  again with them);
- a yes to a window: the meeting moved there (``lead_meetings.reschedule``, same event UID)
  or booked anew (``lead_meetings.book``); "taken" (someone else's event landed there since
  the offer) -> the next free windows are offered instead; "offline" (the calendar did not
  answer) -> kept in our database as before, the CALENDAR / MEETING lines say so;
- a cancel: the event deleted (``lead_meetings.cancel``).

The confirmation carries the signed add-to-calendar link when PUBLIC_BASE_URL is set.
Every calendar request is bounded by CALENDAR_TIMEOUT_SECONDS (a move is at most three: the
check, the PUT, the check after it); a calendar that failed is not asked again for
CALENDAR_REFRESH_SECONDS, so a dead calendar costs one message one timeout, not every message.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from dialog import schedule
from dialog import whatsapp as rules
import sqlalchemy as sa

from leads import lead_meetings, schema
from leads.meetings import Meetings
from leads.whatsapp import Inbound
from telemetry.logs import log_event


class WhatsAppCalendar:
    def __init__(self, meetings: Meetings) -> None:
        self.meetings = meetings

    @property
    def has_calendar(self) -> bool:
        return any(r.calendar is not None for r in self.meetings.realtors.all)

    @property
    def rules(self) -> schedule.MeetingRules:
        return self.meetings.rules

    def wants(self, decision: rules.Decision, brain: str) -> bool:
        """Whether the answer must wait for :meth:`settle`: it books, moves or cancels a
        meeting, or it is a model's offer (the rules' offers are made with the busy list)."""
        return decision.action in ("book", "cancel") or (decision.action == "offer" and brain != "rules")

    async def busy_for(self, phone: str) -> list[schedule.Busy]:
        """The busy intervals of the lead's realtor (their meeting's, else the first their area
        gets); [] without a calendar."""
        if not self.has_calendar:
            return []
        meeting_realtor, area = await self.meetings.store.run(self._whose, phone)
        realtor = self.meetings.realtors.by_name(meeting_realtor) if meeting_realtor else None
        if realtor is None:
            candidates = self.meetings.realtors.candidates(area)
            realtor = candidates[0] if candidates else None
        if realtor is None or realtor.calendar is None:
            return []
        return await self.meetings.busy(realtor)

    def _whose(self, phone: str) -> tuple[str | None, str | None]:
        """(the realtor of the lead's booked meeting, the lead's area): one read."""
        m, lead = schema.meetings, schema.leads
        with self.meetings.store.engine.connect() as conn:
            realtor = conn.execute(sa.select(m.c.realtor).where(m.c.phone == phone, m.c.status == "booked")
                                   .order_by(m.c.updated_at.desc()).limit(1)).scalar()
            area = conn.execute(sa.select(lead.c.area).where(lead.c.phone == phone)).scalar()
        return realtor, area

    async def settle(self, msg: Inbound, decision: rules.Decision, before: rules.Thread, now: dt.datetime,
                     busy: list[schedule.Busy]) -> tuple[rules.Decision, str | None]:
        """The answer as the calendar has it, and what the calendar said ("free", "booked",
        "taken", "offline", "cancelled", "none", "error"; None: nothing asked). ``before``:
        the thread before this message; ``busy``: :meth:`busy_for`'s."""
        try:
            if decision.action == "offer":  # a model's reading: the rules' windows, free in the calendar
                return rules.offer_for(before, now, msg.body, decision.hebrew, busy, self.rules), "free"
            if decision.action == "book" and decision.meeting_at is not None:
                return await self._book(msg.phone, decision, before, now)
            if decision.action == "cancel":
                done = await lead_meetings.cancel(self.meetings, msg.phone)
                return decision, "cancelled" if done else "none"
        except Exception as exc:  # noqa: BLE001 - our database or a broken calendar: the answer as before
            log_event("ERROR", logging.ERROR, where="whatsapp.calendar", action=decision.action,
                      message_sid=msg.message_sid, error=repr(exc)[:300])
            return decision, "error"
        return decision, None

    async def _book(self, phone: str, decision: rules.Decision, before: rules.Thread,
                    now: dt.datetime) -> tuple[rules.Decision, str]:
        at = decision.meeting_at
        assert at is not None
        meeting = await lead_meetings.current(self.meetings, phone)
        outcome = await lead_meetings.reschedule(self.meetings, phone, at) if meeting is not None else None
        if meeting is not None and outcome is not None:
            uid = meeting.uid
        else:  # none booked (cancelled, or only in the lead's row): a new one
            outcome, uid = await lead_meetings.book(self.meetings, phone, at)
        if outcome == "taken":
            windows = await lead_meetings.next_windows(self.meetings, phone, now, 3)
            return rules.slot_taken(before, now, at, windows, decision.hebrew), outcome
        return rules.with_ics_link(decision, self.meetings.ics_url(uid, at)), outcome


def calendar_of(app: Any) -> WhatsAppCalendar | None:
    """The app's calendar shell (None when the wiring has no meetings: tests, benches)."""
    meetings = getattr(getattr(app, "wiring", None), "meetings", None)
    if meetings is None:
        return None
    shell = app.extensions.get("agentlocator.whatsapp_calendar")
    if shell is None or shell.meetings is not meetings:
        shell = WhatsAppCalendar(meetings)
        app.extensions["agentlocator.whatsapp_calendar"] = shell
    return shell
