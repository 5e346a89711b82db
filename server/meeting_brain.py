"""A brain with the realtor's calendar: the windows it offers are free there, a confirmed
window is booked there before the agent says "booked", and a cancel or change follows.

:class:`CalendarBrain` wraps the call's brain (rules or OpenAI). The brain stays pure: it
reads the busy intervals through ``Brain.set_calendar``'s callback, which serves the cache
that ``Meetings.refresh_all`` keeps warm (and ``_prepare`` fills before a reply, should it be
cold), so a turn rarely waits for the calendar; while the reply
streams, the sentence that follows a new booking is held until ``Meetings.book`` has re-checked
the slot in the calendar and created the event. Found taken meanwhile → the brain's
``slot_taken`` line ("that time was just taken. How about ...?") replaces the rest of the reply.
(The OpenAI brain confirms through a tool call that arrives after its text: there the
correction follows its "booked" line.) A calendar that does not answer within its timeout: the meeting is kept in our database only,
a CALENDAR line says so, and the call goes on.

What the lead's state says is what the calendar gets: a booking taken back (the reply was
retracted, the caller changed their mind, said they are not interested) is cancelled or
moved at the next turn and at the end of the call.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any, AsyncIterator

import trio

from dialog import guardrails
from dialog.base import Brain, CallerTurn, LeadState
from dialog.phrases import is_hebrew
from leads.meetings import Booking, Meetings, Outcome, new_uid
from leads.realtors import Realtor
from speech.base import SpeechContext
from telemetry.logs import log_event


class CalendarBrain(Brain):
    def __init__(self, inner: Brain, meetings: Meetings, phone: str, language: str) -> None:
        self.inner = inner
        self.meetings = meetings
        self.phone = phone
        self.hebrew = is_hebrew(language)
        self.name = inner.name
        self.call_sid: str | None = None
        self.realtor: Realtor | None = None
        self._picked_for: str | None = None  # the area the realtor was picked for
        self.uid = new_uid()  # the meeting's UID, whatever time it ends up at
        self.booked_at: dt.datetime | None = None  # what the calendar / our database holds now
        # A booking cut off mid-way (a barge-in cancelled the reply): its worker thread may
        # still have written the event. Settled at the next turn or the end.
        self._unsure = False
        inner.set_calendar(self._busy_now, meetings.rules)

    # -- delegated ---------------------------------------------------------------------------------

    @property  # type: ignore[override]
    def lead(self) -> LeadState:
        return self.inner.lead

    @property  # type: ignore[override]
    def finished(self) -> bool:
        return self.inner.finished

    def opening(self) -> str:
        return self.inner.opening()

    def heard(self, said: str, heard_fully: bool) -> None:
        self.inner.heard(said, heard_fully)

    def asking(self) -> str | None:
        return self.inner.asking()

    def speech_context(self) -> SpeechContext:
        return self.inner.speech_context()

    def retract(self) -> None:
        self.inner.retract()  # a booking it took back is cancelled at the next turn / the end

    def call_out(self, ctx: Any) -> None:
        self.inner.call_out(ctx)

    def bind_call(self, call_sid: str) -> None:
        self.call_sid = call_sid
        self.inner.bind_call(call_sid)

    def summary(self) -> str:
        text = self.inner.summary()
        lead = self.lead
        if lead.status == "meeting_booked" and lead.meeting_at is not None:
            url = self.meetings.ics_url(self.uid, lead.meeting_at)
            if url:
                text += ("\nלהוספה ליומן: " if self.hebrew else "\nAdd to your calendar: ") + url
        return text

    async def aclose(self) -> None:
        try:
            await self._settle(at_end=True)
        finally:
            await self.inner.aclose()

    # -- the reply -------------------------------------------------------------------------------------

    def respond(self, turn: CallerTurn) -> AsyncIterator[str]:
        # The inner brain's respond() is called now: its retract() snapshot is this moment's.
        return self._respond(self.inner.respond(turn))

    async def _respond(self, sentences: AsyncIterator[str]) -> AsyncIterator[str]:
        async with contextlib.aclosing(sentences) as inner:  # type: ignore[type-var]
            await self._settle()
            await self._prepare()
            async for sentence in inner:
                if self._wants_booking():
                    instead = await self._book_or_instead()
                    if instead is not None:
                        await inner.aclose()
                        for line in instead:
                            yield line
                        return
                yield sentence
        # The OpenAI brain applies its tool calls (meeting_confirmed) after the text: its
        # "booked" line is out before the booking is known, so a conflict gets the correction
        # right after it.
        if self._wants_booking():
            for line in await self._book_or_instead() or ():
                yield line
        await self._settle()

    async def _book_or_instead(self) -> list[str] | None:
        """Book the lead's meeting; None when that went through (or the calendar is down),
        else the sentences to say instead (the brain's next free windows)."""
        at = self.lead.meeting_at
        assert at is not None
        if await self._book(at) != "taken":
            return None
        instead = self.inner.slot_taken(at)
        return guardrails.sentences(instead) if instead else None

    def _wants_booking(self) -> bool:
        lead = self.lead
        return lead.status == "meeting_booked" and lead.meeting_at is not None and lead.meeting_at != self.booked_at

    def _realtor_now(self) -> Realtor | None:
        """The lead's realtor: picked when first needed, again if the area changes before a
        booking (a pick is a round-robin turn, so it is not made before it matters)."""
        area = self.lead.slots.area
        if self.realtor is None or (self.booked_at is None and area is not None and area != self._picked_for):
            self.realtor = self.meetings.pick(area)
            self._picked_for = area
        return self.realtor

    def _busy_now(self) -> list[tuple[dt.datetime, dt.datetime]]:
        """For the brain, when it chooses windows (sync: the cache _prepare keeps warm)."""
        realtor = self._realtor_now()
        if realtor is None or realtor.calendar is None:
            return []
        return self.meetings.cached_busy(realtor) or []

    async def _prepare(self) -> None:
        """Before a reply: the busy lists the brain may read during it are in the cache (at
        once when the background refresh keeps it warm). Until the realtor is picked, those of
        every realtor the lead could get."""
        if self.realtor is not None:
            candidates = [self.realtor]
            area = self.lead.slots.area
            if self.booked_at is None and area is not None and area != self._picked_for:
                candidates += self.meetings.realtors.candidates(area)
        else:
            candidates = self.meetings.realtors.candidates(self.lead.slots.area)
        with_calendar = [r for r in dict.fromkeys(candidates) if r.calendar is not None]
        if len(with_calendar) == 1:
            await self.meetings.busy(with_calendar[0])
        elif with_calendar:  # side by side: a cold start waits for the slowest, not the sum
            async with trio.open_nursery() as nursery:
                for realtor in with_calendar:
                    nursery.start_soon(self.meetings.busy, realtor)

    async def _book(self, at: dt.datetime) -> Outcome:
        self._realtor_now()
        self._unsure = True
        try:
            if self.booked_at is not None:
                outcome = await self.meetings.reschedule(self.uid, at)
            else:
                s = self.lead.slots
                outcome = await self.meetings.book(Booking(
                    uid=self.uid, realtor=self.realtor.name if self.realtor else "", phone=s.phone or self.phone,
                    starts_at=at, call_sid=self.call_sid, name=s.name, area=s.area, property_type=s.property_type,
                    rooms=s.rooms, budget_ils=s.budget_ils, deal=s.deal,
                ))
        except Exception as exc:  # our database, say: the caller still hears their meeting booked
            log_event("ERROR", logging.ERROR, where="meetings.book", call_sid=self.call_sid, error=repr(exc)[:300])
            return "offline"
        self._unsure = False
        if outcome != "taken":
            self.booked_at = at
        return outcome

    async def _settle(self, at_end: bool = False) -> None:
        """Make the calendar say what the lead's state says (a booking taken back is cancelled;
        at the end of the call, a booking not yet written is written)."""
        try:
            await self._reconcile(at_end)
        except Exception as exc:
            log_event("ERROR", logging.ERROR, where="meetings.settle", call_sid=self.call_sid, error=repr(exc)[:300])

    async def _reconcile(self, at_end: bool) -> None:
        lead = self.lead
        wanted = lead.status == "meeting_booked" and lead.meeting_at is not None
        if not wanted and self._unsure:
            await self.meetings.discard(self.uid, self.realtor.name if self.realtor else "")
            self._unsure = False
            self.booked_at = None
        elif self.booked_at is not None and not wanted:
            await self.meetings.cancel(self.uid)
            self.booked_at = None
        elif at_end and self._wants_booking():
            assert lead.meeting_at is not None
            if await self._book(lead.meeting_at) == "taken":
                # Too late to offer another window: the realtor calls back (the lead keeps the time).
                log_event("MEETING", op="book_at_end", outcome="taken_unresolved", uid=self.uid,
                          call_sid=self.call_sid)
