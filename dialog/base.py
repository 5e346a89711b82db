"""The brain's interface, as the call session sees it.

One :class:`Brain` per call. The session calls :meth:`Brain.opening` once, then for every
caller turn iterates :meth:`Brain.respond` and speaks each sentence as soon as it arrives
(the first sentence goes to TTS before the model has finished). After every agent turn the
session tells the brain what the caller actually heard (:meth:`Brain.heard`), from the mark
echoes: an interrupted reply is recorded only up to where playback stopped.

A reply the caller never heard any of, because they went on talking and the session will
send one merged turn instead, is taken back with :meth:`Brain.retract`. The goodbye can be
talked over: :meth:`Brain.respond` on a finished brain reopens the call.
"""
from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Literal

from speech.base import SpeechContext

LeadStatus = Literal["new", "qualified", "meeting_booked", "lost"]

CLARIFY_HE = "לא בטוח ששמעתי נכון, אפשר לחזור על זה?"
CLARIFY_EN = "I'm not sure I heard that right, could you say it again?"


@dataclass(slots=True)
class Slots:
    area: str | None = None
    property_type: str | None = None
    rooms: float | None = None
    budget_ils: int | None = None  # the most they will pay; a month's rent when deal == "rent"
    deal: str | None = None  # "buy" | "rent" (not required: asked only when a budget is ambiguous)
    timeframe: str | None = None
    name: str | None = None
    phone: str | None = None  # caller ID, confirmed by the caller
    phone_confirmed: bool = False

    def missing(self) -> list[str]:
        required = ("area", "property_type", "budget_ils", "timeframe", "name")
        missing = [k for k in required if getattr(self, k) is None]
        if not self.phone_confirmed:
            missing.append("phone")
        return missing


@dataclass(slots=True)
class LeadState:
    slots: Slots = field(default_factory=Slots)
    status: LeadStatus = "new"
    meeting_at: dt.datetime | None = None  # aware, Asia/Jerusalem
    # On a call we placed, "not a good time, call me at six": when to call back (aware). The
    # store turns it into a new dial job at the call's end (leads.dialjobs).
    callback_at: dt.datetime | None = None
    # "Don't call me again" / "תורידו אותי": the number goes on the do-not-call list at the
    # call's end (leads.optout), and no follow-up is sent.
    do_not_call: bool = False


# What one caller turn can hold: ~MAX_UTT of speech is a few dozen words; merged continuations
# a few hundred characters. More is not speech, and no brain should spend time on it.
MAX_TURN_CHARS = 1000


@dataclass(frozen=True, slots=True)
class CallerTurn:
    text: str
    confidence: float
    interrupted_agent: bool = False  # the caller barged in on the previous agent turn

    def __post_init__(self) -> None:
        if len(self.text) > MAX_TURN_CHARS:
            object.__setattr__(self, "text", self.text[:MAX_TURN_CHARS])


class Brain(abc.ABC):
    name: str = "brain"
    lead: LeadState
    # True once the goodbye has been produced: the session may end the call. A respond() after
    # it (the caller talked over the goodbye or right after it) puts it back to False, unless the
    # caller only said bye or thanks, which gets a short goodbye again.
    finished: bool = False

    @abc.abstractmethod
    def opening(self) -> str:
        """The greeting (fixed per language, so the TTS can cache it)."""

    @abc.abstractmethod
    def respond(self, turn: CallerTurn) -> AsyncIterator[str]:
        """Yield the reply sentence by sentence; the rules are enforced before a sentence leaves.

        Also on a finished brain: see :attr:`finished`."""

    def retract(self) -> None:
        """The last respond() was abandoned before the caller heard any of it (the caller went
        on talking; the session will send one merged turn instead): put the brain back exactly
        as it was before that respond() — slots, phase, counters, history, finished flag.

        Safe whether that reply was iterated to the end, cancelled mid-stream (closed with
        ``aclose``) or never iterated; a no-op when there is nothing to take back (nothing
        since the last retract). A heard() reported for the retracted reply is undone with it.
        Brains that keep no state between turns may leave this as is."""
        return None

    @abc.abstractmethod
    def heard(self, said: str, heard_fully: bool) -> None:
        """What the caller actually heard of the last agent turn (cut at the barge-in)."""

    @abc.abstractmethod
    def summary(self) -> str:
        """The WhatsApp summary text (Hebrew for he-IL): the lead's details and the meeting."""

    def call_out(self, ctx: Any) -> None:
        """This call is one we placed (a :class:`dialog.outbound.OutboundContext`): open with
        the lead's name and request, start from their known slots. Called once, before
        :meth:`opening`. A brain that does not know how greets as on an inbound call."""

    def set_calendar(self, busy: "Callable[[], list[tuple[dt.datetime, dt.datetime]]]", rules: object) -> None:
        """The realtor's calendar (server.meeting_brain): ``busy()`` gives, at the moment windows
        are chosen, the busy [start, end) intervals no offered window may touch (no I/O: a
        cache); ``rules`` is the meeting's :class:`dialog.schedule.MeetingRules`. Brains that
        offer no windows ignore it."""
        return None

    def slot_taken(self, at: dt.datetime) -> str | None:
        """The window the caller just confirmed turned out taken in the calendar: undo the
        booking and return what to say instead (the next free windows). None: not supported."""
        return None

    def bind_call(self, call_sid: str) -> None:
        """The session tells the brain which call it serves (the booking links to its page)."""
        return None

    def asking(self) -> str | None:
        """The slot the agent's last question asks for ("budget_ils", "area", "deal"...), or None."""
        return None

    def speech_context(self) -> SpeechContext:
        """What the recognizer should expect next: the slot just asked for and, for the area
        question, the places next to the area already given. Cheap (a recognizer polls it,
        :meth:`speech.base.Recognizer.follow_context`)."""
        from dialog.places import near

        area = self.lead.slots.area
        return SpeechContext(self.asking(), near(area) if area else ())

    async def aclose(self) -> None:
        """Release network resources; the session calls it when the call ends (any way it ends).

        The offline brain holds none; the OpenAI brain closes its HTTP client here.
        """
        return None
