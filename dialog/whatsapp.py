"""The rules brain for WhatsApp (text mode): what a lead's message asks for, and the answer.

Pure: :func:`decide` takes the message, the thread's state and ``now``; nothing reads a
clock or a database. The server (server.whatsapp) applies the :class:`Decision` to the store
and queues the reply in the outbox.

Same rules as on the phone (dialog.guardrails): a reply is short (at most 2 sentences and 20
words) and asks at most one question, last; a closing line (booked, cancelled, removed,
handed to a person) asks none. The meeting windows always come from dialog.schedule (office
hours, never Shabbat or a holiday), never from the words of a model.

What a message can do:
- "הסר" / "STOP" (and "הסירו אותי", "unsubscribe"...) -> opt out of WhatsApp and calls;
- with a meeting booked: a yes confirms it; "אפשר להזיז למחר?" / "reschedule" offers 2-3 new
  windows (on the day named, when it has them), the lead picks one, a yes books it; "לבטל" /
  "cancel" cancels it (and asks whether to set another time);
- anything this cannot read (a question about a property, a voice note, a third "what?")
  -> handed to a person: the lead is flagged ``needs_person`` and told someone will answer.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

from dialog import cues, guardrails, schedule
from dialog.schedule import TZ

Action = Literal[
    "opt_out", "confirm", "offer", "choose", "book", "cancel", "thanks", "handoff", "ignore",
]
Phase = Literal["idle", "offer", "confirm", "cancelled"]
MAX_MISSES = 1  # unreadable answers to an offer before a person takes over
MAX_TEXT_CHARS = 1000  # one WhatsApp message as the rules read it (like a caller turn)
NO_WINDOWS = "no free windows to offer"  # a handoff no model can undo

_HEBREW = re.compile(r"[\u0590-\u05FF]")
# Opting out: the whole message is the keyword (WhatsApp's and the user's words), or a clear
# request to be removed. "STOP" alone, not "stop calling at 9" (that is for a person).
_OPT_OUT_WORDS = frozenset({
    "הסר", "הסרה", "להסיר", "הסירו", "תסירו", "stop", "unsubscribe", "stopall", "cancel all", "end", "quit",
    "הסר אותי", "הסירו אותי", "תסירו אותי", "להסיר אותי", "תוריד אותי", "תורידו אותי", "remove me",
    "opt out", "optout", "stop messaging me", "stop texting me",
})
_OPT_OUT_PHRASE = re.compile(
    r"(ה?סירו\s+אותי|להסיר\s+אותי|תסיר(?:ו)?\s+אותי|תוריד(?:ו)?\s+אותי\s+מה?רשימה|אל\s+תתקשרו\s+(?:אליי|אלי)\s+יותר"
    r"|אל\s+תשלחו\s+(?:לי\s+)?(?:יותר|עוד)|remove\s+me\s+from|do\s+not\s+(?:contact|call|message|text)\s+me"
    r"|don't\s+(?:contact|call|message|text)\s+me|unsubscribe)",
    re.IGNORECASE,
)
_CANCEL = re.compile(
    r"(לבטל|לבטל\s+את|מבטל|מבטלת|בטל\b|ביטול|לא\s+(?:אוכל|נוכל|אגיע|נגיע)\s*(?:להגיע)?(?:\s|$|[.,!])|"
    r"\bcancel\b|\bcan't\s+(?:come|make\s+it)\b|\bwon't\s+(?:come|make\s+it)\b|call\s+(?:it|the\s+meeting)\s+off)",
    re.IGNORECASE,
)
_RESCHEDULE = re.compile(
    r"(להזיז|להעביר\s+את\s+הפגישה|לדחות|לשנות\s+(?:את\s+)?(?:ה)?(?:מועד|שעה|פגישה|יום)|לקבוע\s+מחדש|מועד\s+אחר|"
    r"זמן\s+אחר|יום\s+אחר|שעה\s+אחרת|להקדים|לאחר\s+את|אפשר\s+(?:ב|ל)?(?:מחר|יום|שעה)|"
    r"\breschedul\w*|\bmove\s+(?:it|the\s+meeting)|\bpostpone|\banother\s+(?:time|day)|\bdifferent\s+(?:time|day)|"
    r"\bchange\s+the\s+(?:time|day|meeting)|\bcan\s+we\s+do\b)",
    re.IGNORECASE,
)
_WANT_MEETING = re.compile(
    r"(לקבוע\s+פגישה|לתאם\s+פגישה|רוצה\s+(?:לקבוע|להיפגש|פגישה)|אפשר\s+פגישה|book\s+a\s+meeting|set\s+up\s+a\s+meeting|"
    r"\bmeet\b)",
    re.IGNORECASE,
)
_THANKS = re.compile(r"^(?:תודה(?:\s+רבה)?|תודה לך|מעולה תודה|סבבה תודה|thanks|thank\s+you|thx|ty|👍|🙏|❤️?)[\s!.🙏👍]*$",
                     re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Thread:
    """What the thread knows between messages (stored per lead, leads.whatsapp)."""

    meeting_at: dt.datetime | None = None  # the booked meeting (aware), if any
    phase: Phase = "idle"
    offered: tuple[dt.datetime, ...] = ()  # the windows our last offer named
    chosen: dt.datetime | None = None  # picked, waiting for the yes
    misses: int = 0  # unreadable answers in a row
    name: str | None = None  # the lead's name, for a warmer line


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reply: str | None  # None: nothing to send (thanks after a closing line, an opted-out lead)
    thread: Thread  # the thread after this message
    meeting_at: dt.datetime | None = None  # the booked meeting after it
    opt_out: bool = False
    needs_person: str | None = None  # why a person must take the thread
    final: bool = False  # the reply asks nothing (a closing line)
    hebrew: bool = True
    violations: tuple[str, ...] = field(default=())


HE = {
    "opted_out": "הוסרת מהרשימה: לא נשלח עוד הודעות ולא נתקשר. יום טוב.",
    "confirmed": "מעולה, הפגישה {window} בתוקף. נתראה!",
    "offer": "אין בעיה. מתאים {offer}?",
    "offer_again": "אז אולי {offer}?",
    "offer_which": "איזה מועד מתאים, {offer}?",
    "confirm": "אז {window}, לקבוע?",
    "booked": "קבענו {window}. נתראה!",
    "cancelled": "ביטלתי את הפגישה. לקבוע מועד אחר?",
    "cancel_done": "בסדר גמור. אם תרצו לקבוע, כתבו לנו כאן.",
    "no_meeting_cancel": "אין פגישה קבועה כרגע. לקבוע אחת?",
    "handoff": "תודה, נציג שלנו יחזור אליך כאן בהקדם.",
    "no_windows": "נציג שלנו יחזור אליך לתיאום מועד בהקדם.",
    "thanks": "בשמחה! נתראה {window}.",
}
EN = {
    "opted_out": "You're removed: no more messages or calls from us. Have a good day.",
    "confirmed": "Great, your meeting {window} stands. See you then!",
    "offer": "No problem. Would {offer} work?",
    "offer_again": "Then maybe {offer}?",
    "offer_which": "Which time works, {offer}?",
    "confirm": "So {window}, shall I book it?",
    "booked": "Booked {window}. See you then!",
    "cancelled": "I've cancelled the meeting. Shall we set another time?",
    "cancel_done": "No problem. If you'd like to meet, just write here.",
    "no_meeting_cancel": "There's no meeting booked right now. Shall we set one?",
    "handoff": "Thanks, one of our agents will answer you here shortly.",
    "no_windows": "One of our agents will get back to you to set a time shortly.",
    "thanks": "You're welcome! See you {window}.",
}


def is_hebrew_text(text: str) -> bool:
    return bool(_HEBREW.search(text))


def normal(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split()).strip(" .!?,")


def is_opt_out(text: str) -> bool:
    t = normal(text[:MAX_TEXT_CHARS])
    return t in _OPT_OUT_WORDS or bool(_OPT_OUT_PHRASE.search(t))


def write_window(at: dt.datetime, now: dt.datetime, hebrew: bool) -> str:
    """A window as written in a message: "מחר (02.12) ב-10:00", "Thursday (03.12) at 13:00"."""
    at = at.astimezone(TZ)
    day = schedule.say_day(at, now, hebrew)
    if (at.date() - now.astimezone(TZ).date()).days >= 7:  # say_day already wrote the date
        return f"{day} {'ב-' if hebrew else 'at '}{at:%H:%M}"
    return f"{day} ({at:%d.%m}) {'ב-' if hebrew else 'at '}{at:%H:%M}"


def write_offer(windows: Sequence[dt.datetime], now: dt.datetime, hebrew: bool) -> str:
    """ "מחר (02.12) ב-13:00 או ב-16:00": a day is written once for its windows in a row."""
    said = []
    for i, w in enumerate(windows):
        same_day = i > 0 and windows[i - 1].astimezone(TZ).date() == w.astimezone(TZ).date()
        said.append(f"{'ב-' if hebrew else 'at '}{w.astimezone(TZ):%H:%M}" if same_day else write_window(w, now, hebrew))
    joiner = " או " if hebrew else " or "
    return joiner.join(said) if len(said) <= 2 else ", ".join(said[:-1]) + joiner + said[-1]


def _day_named(text: str, now: dt.datetime) -> dt.date | None:
    """The one day a message names ("מחר", "ביום חמישי", "tomorrow"), within the next week."""
    t = text.lower()
    today = now.astimezone(TZ).date()
    if re.search(r"מחרתיים|day\s+after\s+tomorrow", t):
        return today + dt.timedelta(days=2)
    if re.search(r"מחר|tomorrow", t):
        return today + dt.timedelta(days=1)
    named = schedule._weekdays_named(t)  # noqa: SLF001 - the same day names the phone reads
    if len(named) != 1:
        return None
    (weekday,) = named
    ahead = (weekday - today.weekday()) % 7 or 7
    return today + dt.timedelta(days=ahead)


def new_windows(now: dt.datetime, text: str, exclude: Sequence[dt.datetime] = ()) -> list[dt.datetime]:
    """2-3 windows to offer: on the day the message names when it has at least two open ones,
    else the usual spread (dialog.schedule.offer_windows); never one already offered or booked."""
    taken = set(exclude)
    day = _day_named(text, now)
    if day is not None:
        on_day = [s for s in schedule.slots_from(now, days=9) if s.date() == day and s not in taken]
        if len(on_day) >= 2:
            return on_day[:3]
    try:
        return schedule.offer_windows(now, 3, exclude=list(taken))
    except ValueError:
        return []


class Rules:
    """The reply texts in one language, each checked against the phone's rules."""

    def __init__(self, hebrew: bool, now: dt.datetime) -> None:
        self.hebrew = hebrew
        self.now = now
        self.say = HE if hebrew else EN

    def window(self, at: dt.datetime) -> str:
        return write_window(at, self.now, self.hebrew)

    def offer(self, windows: Sequence[dt.datetime], key: str = "offer") -> str:
        return self.say[key].format(offer=write_offer(windows, self.now, self.hebrew))


def _decision(action: Action, reply: str | None, thread: Thread, *, hebrew: bool, final: bool = False,
              opt_out: bool = False, needs_person: str | None = None) -> Decision:
    """A Decision, its reply checked against the phone's rules (a statement is fine in text)."""
    violations: tuple[str, ...] = ()
    if reply is not None:
        violations = tuple(v for v in guardrails.check(reply, final=final) if final or v != "no_question")
    return Decision(action, reply, thread, meeting_at=thread.meeting_at, opt_out=opt_out,
                    needs_person=needs_person, final=final, hebrew=hebrew, violations=violations)


def decide(text: str, thread: Thread, now: dt.datetime, *, num_media: int = 0) -> Decision:
    """The answer to one inbound message. ``action == "handoff"`` is also what the OpenAI
    text brain (dialog.whatsapp_openai) is asked about before a person is called."""
    text = (text or "")[:MAX_TEXT_CHARS].strip()
    hebrew = is_hebrew_text(text) or not re.search(r"[a-zA-Z]", text)
    r = Rules(hebrew, now)
    say = r.say
    if text and is_opt_out(text):
        idle = replace(thread, phase="idle", offered=(), chosen=None, misses=0)
        return _decision("opt_out", say["opted_out"], idle, hebrew=hebrew, final=True, opt_out=True)
    if not text:
        reason = "media without text" if num_media else "empty message"
        return handoff(thread, r, reason)
    answer = cues.yes_no(text)

    if _CANCEL.search(text) and not (thread.phase in ("offer", "confirm") and _RESCHEDULE.search(text)):
        if thread.meeting_at is None:
            return _decision("cancel", say["no_meeting_cancel"], replace(thread, phase="cancelled", offered=(),
                             chosen=None, misses=0), hebrew=hebrew)
        cancelled = Thread(None, "cancelled", (), None, 0, thread.name)
        return _decision("cancel", say["cancelled"], cancelled, hebrew=hebrew)

    if _RESCHEDULE.search(text) or (thread.phase == "cancelled" and (answer is True or _WANT_MEETING.search(text))) \
            or (thread.meeting_at is None and thread.phase == "idle" and _WANT_MEETING.search(text)):
        exclude = [*thread.offered, *([thread.meeting_at] if thread.meeting_at else [])]
        windows = new_windows(now, text, exclude)
        if len(windows) < 2:
            return handoff(thread, r, NO_WINDOWS, say["no_windows"])
        offered = replace(thread, phase="offer", offered=tuple(windows), chosen=None, misses=0)
        return _decision("offer", r.offer(windows), offered, hebrew=hebrew)

    if thread.phase == "cancelled":
        if answer is False or cues.is_closing(text, "he-IL" if hebrew else "en-US"):
            return _decision("thanks", say["cancel_done"], replace(thread, phase="idle"), hebrew=hebrew, final=True)
        return handoff(thread, r, "after a cancellation: not a yes or no")

    if thread.phase == "offer" and thread.offered:
        chosen = schedule.pick(text, list(thread.offered), now)
        if chosen.kind == "window" and chosen.at is not None:
            return _decision("choose", say["confirm"].format(window=r.window(chosen.at)),
                             replace(thread, phase="confirm", chosen=chosen.at, misses=0), hebrew=hebrew)
        if chosen.kind == "none" or answer is False:
            windows = new_windows(now, text, [*thread.offered, *([thread.meeting_at] if thread.meeting_at else [])])
            if len(windows) < 2:
                return handoff(thread, r, NO_WINDOWS, say["no_windows"])
            return _decision("offer", r.offer(windows, "offer_again"),
                             replace(thread, offered=tuple(windows), misses=0), hebrew=hebrew)
        if thread.misses < MAX_MISSES:
            return _decision("offer", r.offer(thread.offered, "offer_which"),
                             replace(thread, misses=thread.misses + 1), hebrew=hebrew)
        return handoff(thread, r, "could not read which window")

    if thread.phase == "confirm" and thread.chosen is not None:
        other = schedule.pick(text, [thread.chosen, *[w for w in thread.offered if w != thread.chosen]], now)
        if answer is True and not (other.kind == "window" and other.at != thread.chosen):
            at = thread.chosen
            booked = Thread(at, "idle", (), None, 0, thread.name)
            return _decision("book", say["booked"].format(window=r.window(at)), booked, hebrew=hebrew,
                             final=True)
        if other.kind == "window" and other.at is not None and other.at != thread.chosen:
            return _decision("choose", say["confirm"].format(window=r.window(other.at)),
                             replace(thread, chosen=other.at, misses=0), hebrew=hebrew)
        if answer is False or other.kind == "none":
            windows = new_windows(now, text, [*thread.offered, *([thread.meeting_at] if thread.meeting_at else [])])
            if len(windows) < 2:
                return handoff(thread, r, NO_WINDOWS, say["no_windows"])
            return _decision("offer", r.offer(windows, "offer_again"),
                             replace(thread, phase="offer", offered=tuple(windows), chosen=None, misses=0),
                             hebrew=hebrew)
        if thread.misses < MAX_MISSES:
            return _decision("choose", say["confirm"].format(window=r.window(thread.chosen)),
                             replace(thread, misses=thread.misses + 1), hebrew=hebrew)
        return handoff(thread, r, "no yes or no to the chosen window")

    if thread.meeting_at is not None and answer is True:
        return _decision("confirm", say["confirmed"].format(window=r.window(thread.meeting_at)),
                         replace(thread, phase="idle"), hebrew=hebrew, final=True)
    if _THANKS.match(text) or cues.is_closing(text, "he-IL" if hebrew else "en-US"):
        return _decision("ignore", None, thread, hebrew=hebrew, final=True)  # no ping-pong of thanks
    return handoff(thread, r, "not something the rules can answer")


def handoff(thread: Thread, r: Rules, reason: str, line: str | None = None) -> Decision:
    idle = replace(thread, phase="idle", offered=(), chosen=None, misses=0)
    return _decision("handoff", line or r.say["handoff"], idle, hebrew=r.hebrew, final=True,
                     needs_person=reason)


def offer_for(thread: Thread, now: dt.datetime, text: str, hebrew: bool) -> Decision:
    """The model read a wish to reschedule the rules missed: offer windows (from the schedule)."""
    r = Rules(hebrew, now)
    windows = new_windows(now, text, [*thread.offered, *([thread.meeting_at] if thread.meeting_at else [])])
    if len(windows) < 2:
        return handoff(thread, r, NO_WINDOWS, r.say["no_windows"])
    return _decision("offer", r.offer(windows), replace(thread, phase="offer", offered=tuple(windows), chosen=None,
                                                        misses=0), hebrew=hebrew)


def apply_action(action: str, thread: Thread, now: dt.datetime, text: str, hebrew: bool,
                 window: int | None = None) -> Decision | None:
    """A model's reading of a message (dialog.whatsapp_openai) turned into the same
    transitions the rules make; None when the action does not fit the thread's state."""
    r = Rules(hebrew, now)
    say = r.say
    if action == "opt_out":
        return _decision("opt_out", say["opted_out"], replace(thread, phase="idle", offered=(), chosen=None, misses=0),
                         hebrew=hebrew, final=True, opt_out=True)
    if action == "confirm" and thread.meeting_at is not None and thread.phase == "idle":
        return _decision("confirm", say["confirmed"].format(window=r.window(thread.meeting_at)), thread,
                         hebrew=hebrew, final=True)
    if action == "confirm" and thread.phase == "confirm" and thread.chosen is not None:
        at = thread.chosen
        return _decision("book", say["booked"].format(window=r.window(at)), Thread(at, "idle", (), None, 0, thread.name),
                         hebrew=hebrew, final=True)
    if action == "reschedule":
        return offer_for(thread, now, text, hebrew)
    if action == "choose" and thread.phase in ("offer", "confirm") and window is not None \
            and 0 <= window < len(thread.offered):
        at = thread.offered[window]
        return _decision("choose", say["confirm"].format(window=r.window(at)),
                         replace(thread, phase="confirm", chosen=at, misses=0), hebrew=hebrew)
    if action == "cancel":
        if thread.meeting_at is None:
            return None
        return _decision("cancel", say["cancelled"], Thread(None, "cancelled", (), None, 0, thread.name),
                         hebrew=hebrew)
    if action == "thanks":
        return _decision("ignore", None, thread, hebrew=hebrew, final=True)
    return None
