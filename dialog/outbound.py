"""A call we placed: whom we called, how the agent opens, and "not a good time".

Pure (``now`` is given). The dialer's lead becomes an :class:`OutboundContext` (the server
reads it from the store before the brain is made); the brains then

- open with the lead's name and what they asked for ("היי דנה, מדברת נועה מ-AgentLocator,
  השארת פרטים על דירה ברמת גן — זה זמן טוב?") instead of the inbound greeting,
- start from the slots the lead already gave (never asked again; the number we reached
  them on is confirmed by reaching them),
- and turn "not a good time" into a callback at the time the lead names
  (:func:`callback_time`), which the store makes a new dial job.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Mapping

from dialog import schedule
from dialog.base import LeadState, Slots
from dialog.schedule import TZ

# Slots an intake form may have filled, as the lead row names them.
SLOT_KEYS = ("name", "area", "property_type", "rooms", "budget_ils", "deal", "timeframe")


@dataclass(frozen=True, slots=True)
class OutboundContext:
    """What the agent knows before the lead says a word."""

    phone: str
    name: str | None = None
    area: str | None = None
    property_type: str | None = None
    rooms: float | None = None
    budget_ils: int | None = None
    deal: str | None = None
    timeframe: str | None = None
    reason: str = "intake"  # intake | operator | callback (the lead asked us to call back now)
    source: str | None = None
    job_id: int | None = None
    # The dialer's calling hours (leads.hours.CallingHours: anything with next_allowed): a
    # callback the lead asks for outside them is said, and made, at the next opening.
    hours: Any = None

    @classmethod
    def from_lead(cls, phone: str, lead: Mapping[str, Any] | None, reason: str = "intake",
                  job_id: int | None = None, hours: Any = None) -> "OutboundContext":
        lead = lead or {}
        return cls(phone=phone, reason=reason, job_id=job_id, source=lead.get("source"), hours=hours,
                   **{k: lead.get(k) for k in SLOT_KEYS})


def prefill(lead: LeadState, ctx: OutboundContext) -> None:
    """The brain's lead starts from what the lead already told us; we reached them on this
    number, so it needs no confirming."""
    s = lead.slots
    for key in SLOT_KEYS:
        value = getattr(ctx, key)
        if value is not None and getattr(s, key) is None:
            setattr(s, key, value)
    s.phone = ctx.phone or s.phone
    s.phone_confirmed = bool(ctx.phone)


def first_name(name: str | None) -> str:
    return (name or "").strip().split(" ")[0]


def _asked_for(ctx: OutboundContext, hebrew: bool) -> str:
    from dialog import summary

    slots = Slots(area=ctx.area, property_type=ctx.property_type, rooms=ctx.rooms)
    what = summary.say_property(slots, hebrew)
    if hebrew:
        what = what or "נכס"
        return f"{what} ב{ctx.area}" if ctx.area else what
    what = what or "a property"
    return f"{what} in {ctx.area}" if ctx.area else what


def opening(ctx: OutboundContext, hebrew: bool) -> str:
    """The first line of a call we placed: who we are, why we call, is it a good time."""
    name = first_name(ctx.name)
    if hebrew:
        hello = f"היי {name}, מדברת נועה מ-AgentLocator" if name else "היי, מדברת נועה מ-AgentLocator"
        if ctx.reason == "callback":
            return f"{hello}, ביקשת שנחזור בשעה הזאת — זה זמן טוב?"
        return f"{hello}, השארת פרטים על {_asked_for(ctx, True)} — זה זמן טוב?"
    hello = f"Hi {name}, this is Noa from AgentLocator" if name else "Hi, this is Noa from AgentLocator"
    if ctx.reason == "callback":
        return f"{hello}, you asked us to call back now — is this a good time?"
    return f"{hello}, you left your details about {_asked_for(ctx, False)} — is this a good time?"


LINES = {
    True: {
        "when": "אין בעיה. מתי נוח שנחזור?",
        "callback": "בסדר גמור, נחזור {when}. יום נעים.",
        "callback_later": "בסדר גמור, נחזור בהמשך. יום נעים.",
        "go_on": "מעולה.",
    },
    False: {
        "when": "No problem. When would suit you for a call back?",
        "callback": "No problem, we'll call you back {when}. Have a great day.",
        "callback_later": "No problem, we'll call you back later. Have a great day.",
        "go_on": "Great.",
    },
}

_NOT_NOW = re.compile(
    r"(לא\s+(?:זמן\s+טוב|עכשיו|כרגע|נוח)|זמן\s+לא\s+טוב|אין\s+לי\s+זמן|עסוק|עסוקה|באמצע|בנהיגה|נוהג|נוהגת|בישיבה|בפגישה"
    r"|תחזר(?:ו|י)|תתקשר(?:ו|י)\s+(?:אליי\s+)?(?:אח\"כ|אחר\s+כך|מאוחר|מחר|ב)|not\s+(?:a\s+good\s+time|now|right\s+now)"
    r"|bad\s+time|busy|driving|in\s+a\s+meeting|call\s+(?:me\s+)?(?:back|later|tomorrow)|can't\s+talk)",
    re.IGNORECASE,
)


_NO_MORE_CALLS = re.compile(
    r"(אל\s+תתקשר(?:ו|י)|תפסיק(?:ו|י)?\s+(?:להתקשר|לטלפן)|תוריד(?:ו|י)\s+אותי|תסיר(?:ו|י)\s+אותי|הסירו\s+אותי"
    r"|לא\s+לה?תקשר\s+(?:אליי|אלי)\s+(?:יותר|שוב)|stop\s+calling|don'?t\s+call|do\s+not\s+call|remove\s+me"
    r"|take\s+me\s+off)",
    re.IGNORECASE,
)


def asks_no_more_calls(text: str) -> bool:
    """ "אל תתקשרו אליי יותר", "תורידו אותי מהרשימה", "stop calling me": the do-not-call list."""
    return bool(_NO_MORE_CALLS.search(text))


def not_now(text: str) -> bool:
    """The lead cannot talk now ("לא זמן טוב", "תתקשרי בשש", "I'm driving")."""
    return bool(_NOT_NOW.search(text))


_IN = re.compile(
    r"(?:בעוד|in)\s+(?:(?P<n>\d+|כמה|חצי|רבע|שעה|שעתיים|an?|half\s+an?|a\s+couple\s+of|few|a\s+few)\s*)?"
    r"(?P<unit>דקות|דקה|שעות|שעה|שעתיים|minutes?|mins?|hours?)?",
    re.IGNORECASE,
)
_PARTS_OF_DAY = (
    (re.compile(r"בבוקר|morning", re.I), 10, "am"),
    (re.compile(r"אחרי\s+הצהריים|אחה\"צ|afternoon", re.I), 16, "pm"),
    (re.compile(r"בצהריים|noon|lunch", re.I), 13, "pm"),
    (re.compile(r"בערב|evening|tonight", re.I), 18, "pm"),
)


def _relative(t: str, now: dt.datetime) -> dt.datetime | None:
    m = _IN.search(t)
    if not m or not (m.group("n") or m.group("unit")):
        return None
    n, unit = (m.group("n") or "").lower(), (m.group("unit") or "").lower()
    if unit in ("שעתיים",) or n == "שעתיים":
        return now + dt.timedelta(hours=2)
    if n == "שעה" or (not n and unit in ("שעה",)):
        return now + dt.timedelta(hours=1)
    if n in ("חצי", "half an", "half a"):
        return now + dt.timedelta(minutes=30)
    if n == "רבע":
        return now + dt.timedelta(minutes=15)
    count = float(n) if n.isdigit() else (1.0 if n in ("a", "an") else 3.0 if n else 1.0)
    if unit.startswith(("דק", "min")):
        return now + dt.timedelta(minutes=count)
    if unit.startswith(("שע", "hour")):
        return now + dt.timedelta(hours=count)
    return None


def callback_time(text: str, now: dt.datetime) -> dt.datetime | None:
    """The moment the lead named for a call back ("בעוד שעה", "מחר בעשר", "ביום ראשון
    בבוקר", "at 6 pm", "בשש בערב"), aware, or None when they named none. A bare hour is the
    next time it comes round, in the afternoon unless that is past or they said morning."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    t = " ".join(text.lower().split())
    local = now.astimezone(TZ)
    rel = _relative(t, local)
    if rel is not None:
        return rel
    today = local.date()
    day: dt.date | None = None
    if re.search(r"מחרתיים|day after tomorrow", t):
        day = today + dt.timedelta(days=2)
    elif re.search(r"מחר|tomorrow", t):
        day = today + dt.timedelta(days=1)
    else:
        named = schedule._weekdays_named(t)
        if named:
            wd = min(named, key=lambda w: (w - today.weekday()) % 7 or 7)
            day = today + dt.timedelta(days=(wd - today.weekday()) % 7 or 7)
    minute = 30 if re.search(r"וחצי|:30|half\s+past", t) else 0
    exact = re.search(r"\b(\d{1,2}):(\d{2})\b", t)
    hours = schedule._hours_named(re.sub(r"\b\d{1,2}:\d{2}\b", " ", t)) if not exact else set()
    part = next(((h, ap) for rx, h, ap in _PARTS_OF_DAY if rx.search(t)), None)
    if re.search(r"\bpm\b|אחה\"צ", t):
        part = (part[0] if part else 16, "pm")
    elif re.search(r"\bam\b", t):
        part = (part[0] if part else 10, "am")
    if exact:
        candidates = [dt.time(int(exact.group(1)) % 24, int(exact.group(2)))]
    elif hours:
        h = min(hours)
        if part and part[1] == "pm":
            candidates = [dt.time((h % 12) + 12, minute)]
        elif part and part[1] == "am":
            candidates = [dt.time(h % 12, minute)]
        else:  # people call back in the day: 1–7 read as afternoon first
            pm, am = dt.time((h % 12) + 12, minute), dt.time(h % 12, minute)
            candidates = [pm, am] if 1 <= h % 12 <= 7 else [am, pm]
    elif part:
        candidates = [dt.time(part[0])]
    elif day is not None:
        candidates = [dt.time(10)]
    else:
        return None
    days = [day] if day is not None else [today, today + dt.timedelta(days=1)]
    for d in days:
        for c in candidates:
            at = dt.datetime.combine(d, c, TZ)
            if at > local:
                return at
    return dt.datetime.combine(days[-1], candidates[0], TZ)


def say_when(at: dt.datetime, now: dt.datetime, hebrew: bool) -> str:
    """ "היום בשש", "מחר בעשר", "בעוד חצי שעה"."""
    delta = at - now
    if delta <= dt.timedelta(minutes=90):
        minutes = max(1, round(delta.total_seconds() / 60))
        if hebrew:
            if 25 <= minutes <= 35:
                return "בעוד חצי שעה"
            if 55 <= minutes <= 65:
                return "בעוד שעה"
            return f"בעוד {minutes} דקות"
        return f"in {minutes} minutes"
    return schedule.say_window(at.astimezone(TZ), now, hebrew)
