"""Meeting windows: which ones to offer, how to say them, and which one the caller chose.

Pure: every function takes ``now`` (an aware datetime); nothing reads a clock.
Office hours, Asia/Jerusalem: Sunday–Thursday 09:00–18:00, Friday and holiday eves
09:00–13:00; never Shabbat or an Israeli public holiday (the ``holidays`` package's IL
calendar, which follows the Hebrew calendar year by year).

With the realtor's calendar (leads.meetings), ``busy`` intervals come in too: a window is
offered only when the meeting plus the buffer on each side misses every busy interval
(:func:`is_free`); without it the office hours alone decide, as before.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Literal, Sequence
from zoneinfo import ZoneInfo

import holidays

TZ = ZoneInfo("Asia/Jerusalem")
WEEKDAY_HOURS = (10, 13, 16)  # meeting starts offered Sunday–Thursday
SHORT_DAY_HOURS = (9, 11)  # Friday and holiday eves: mornings only
MIN_NOTICE = dt.timedelta(hours=2)  # never offer a slot the agent could not prepare for
HORIZON_DAYS = 21

Busy = tuple[dt.datetime, dt.datetime]  # [start, end), aware


@dataclass(frozen=True, slots=True)
class MeetingRules:
    """How long a meeting is, how much free time it needs around it (MEETING_MINUTES,
    MEETING_BUFFER_MINUTES) and the hours it may start at (MEETING_HOURS,
    MEETING_SHORT_DAY_HOURS: with a calendar, a finer grid leaves more to choose from)."""

    duration: dt.timedelta = dt.timedelta(minutes=60)
    buffer: dt.timedelta = dt.timedelta(minutes=30)
    weekday_hours: tuple[int, ...] = WEEKDAY_HOURS
    short_day_hours: tuple[int, ...] = SHORT_DAY_HOURS


MEETING = MeetingRules()


def is_free(at: dt.datetime, busy: Sequence[Busy], rules: MeetingRules = MEETING) -> bool:
    """The meeting at ``at`` and its buffers overlap no busy interval."""
    start, end = at - rules.buffer, at + rules.duration + rules.buffer
    return all(not (b_start < end and start < b_end) for b_start, b_end in busy)


# Python weekday(): Monday=0 ... Sunday=6
_SHORT_DAY = 4  # Friday
_SHABBAT = 5


@lru_cache(maxsize=8)
def _il_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("IL", years=year)


def is_holiday(day: dt.date) -> bool:
    return day in _il_holidays(day.year)


def hours_on(day: dt.date, rules: MeetingRules = MEETING) -> tuple[int, ...]:
    """Start hours offered on this day (empty: closed)."""
    if day.weekday() == _SHABBAT or is_holiday(day):
        return ()
    if day.weekday() == _SHORT_DAY or is_holiday(day + dt.timedelta(days=1)):
        return rules.short_day_hours
    return rules.weekday_hours


def slots_from(now: dt.datetime, days: int = HORIZON_DAYS, rules: MeetingRules = MEETING) -> list[dt.datetime]:
    now = now.astimezone(TZ)
    earliest = now + MIN_NOTICE
    out: list[dt.datetime] = []
    for offset in range(days):
        day = now.date() + dt.timedelta(days=offset)
        for hour in hours_on(day, rules):
            at = dt.datetime(day.year, day.month, day.day, hour, tzinfo=TZ)
            if at >= earliest:
                out.append(at)
    return out


def offer_windows(
    now: dt.datetime, count: int = 2, exclude: Sequence[dt.datetime] = (),
    busy: Sequence[Busy] = (), rules: MeetingRules = MEETING,
) -> list[dt.datetime]:
    """2–3 windows on different days, mixing morning and afternoon when the days allow;
    none that ``busy`` (the realtor's calendar) makes unavailable."""
    if not 2 <= count <= 3:
        raise ValueError("offer 2 or 3 windows")
    taken = set(exclude)
    free = [s for s in slots_from(now, rules=rules) if s not in taken and is_free(s, busy, rules)]
    chosen: list[dt.datetime] = []
    for slot in free:
        if len(chosen) == count:
            break
        if any(c.date() == slot.date() for c in chosen):
            continue
        if chosen and (slot.hour < 12) == (chosen[-1].hour < 12) and any(
            s.date() == slot.date() and (s.hour < 12) != (chosen[-1].hour < 12) for s in free
        ):
            continue  # the same day has a slot at the other part of the day: take that one
        chosen.append(slot)
    return chosen


# -- saying them ------------------------------------------------------------------------------

_HE_HOURS = {
    1: "אחת", 2: "שתיים", 3: "שלוש", 4: "ארבע", 5: "חמש", 6: "שש", 7: "שבע", 8: "שמונה", 9: "תשע",
    10: "עשר", 11: "אחת עשרה", 12: "שתיים עשרה",
}
_HE_DAYS = ("שני", "שלישי", "רביעי", "חמישי", "שישי", "שבת", "ראשון")  # by Python weekday()
_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_HE_MONTHS = (
    "בינואר", "בפברואר", "במרץ", "באפריל", "במאי", "ביוני", "ביולי", "באוגוסט", "בספטמבר", "באוקטובר",
    "בנובמבר", "בדצמבר",
)


def say_day(at: dt.datetime, now: dt.datetime, hebrew: bool) -> str:
    days = (at.astimezone(TZ).date() - now.astimezone(TZ).date()).days
    wd = at.weekday()
    if days == 0:
        return "היום" if hebrew else "today"
    if days == 1:
        return "מחר" if hebrew else "tomorrow"
    if days < 7:
        return f"ביום {_HE_DAYS[wd]}" if hebrew else _EN_DAYS[wd]
    if hebrew:
        return f"ביום {_HE_DAYS[wd]}, {at.day} {_HE_MONTHS[at.month - 1]}"
    return f"{_EN_DAYS[wd]} the {at.day}{_ordinal(at.day)}"


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def say_time(at: dt.datetime, hebrew: bool) -> str:
    h12 = at.hour % 12 or 12
    if hebrew:
        return "ב" + _HE_HOURS[h12] + (" וחצי" if at.minute == 30 else "")
    suffix = "am" if at.hour < 12 else "pm"
    return f"at {h12}{':30' if at.minute == 30 else ''} {suffix}"


def say_window(at: dt.datetime, now: dt.datetime, hebrew: bool) -> str:
    return f"{say_day(at, now, hebrew)} {say_time(at, hebrew)}"


def say_offer(windows: Sequence[dt.datetime], now: dt.datetime, hebrew: bool) -> str:
    """ "מחר בעשר או ביום חמישי בארבע" (no question mark: the caller's phrasing adds it)."""
    said = [say_window(w, now, hebrew) for w in windows]
    joiner = " או " if hebrew else " or "
    if len(said) <= 2:
        return joiner.join(said)
    return ", ".join(said[:-1]) + joiner + said[-1]


# -- understanding the choice -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pick:
    kind: Literal["window", "none", "unknown"]
    at: dt.datetime | None = None


_NONE = re.compile(
    r"(אף\s+(?:אחד|אחת)|לא\s+מתאים|לא\s+יכול|לא\s+יכולה|לא\s+נוח|זמן\s+אחר|מועד\s+אחר|יום\s+אחר|neither|none|doesn't\s+work|don't\s+work|can't\s+(?:make|do)|other\s+(?:time|day)s?|another\s+(?:time|day))",
    re.IGNORECASE,
)
_ANY = re.compile(r"(לא\s+משנה|מה\s+שנוח|שניהם|איך\s+שנוח|whatever|either|any(?:\s+of\s+them)?\b|both|you\s+choose)", re.IGNORECASE)
_ORDINALS = [
    (re.compile(r"(הראשון|הראשונה|\bfirst\b|המוקדם|earliest|earlier)", re.IGNORECASE), 0),
    (re.compile(r"(השני\b|השנייה|השניה|\bsecond\b)", re.IGNORECASE), 1),
    (re.compile(r"(השלישי\b|השלישית|\bthird\b)", re.IGNORECASE), 2),
    (re.compile(r"(האחרון|האחרונה|\blast\b|\blater\b|המאוחר)", re.IGNORECASE), -1),
]
_HE_DAY_RE = [
    re.compile(r"(?:יום|ביום)\s+" + d + r"(?=$|[\s,.?!])") for d in ("שני", "שלישי", "רביעי", "חמישי", "שישי", "שבת", "ראשון")
]
# Without "יום", "שני"/"ראשון" also mean second/first: only the unambiguous names count alone.
_HE_DAY_LOOSE = {
    wd: re.compile(r"(?:^|\s)ב?" + d + r"(?=$|[\s,.?!])")
    for wd, d in ((1, "שלישי"), (2, "רביעי"), (3, "חמישי"), (4, "שישי"), (5, "שבת"))
}
_EN_DAY_RE = [re.compile(r"\b" + d.lower() + r"\b") for d in _EN_DAYS]
_HOUR_WORDS = {v: k for k, v in _HE_HOURS.items()} | {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "noon": 12,
}


def _weekdays_named(t: str) -> set[int]:
    named = {i for i, r in enumerate(_HE_DAY_RE) if r.search(t)}
    named |= {i for i, r in _HE_DAY_LOOSE.items() if r.search(t)}
    named |= {i for i, r in enumerate(_EN_DAY_RE) if r.search(t)}
    return named


def _hours_named(t: str) -> set[int]:
    found = {int(h) % 12 for h in re.findall(r"\b(\d{1,2})(?::\d\d)?\b", t) if 1 <= int(h) <= 23}
    for word, h in _HOUR_WORDS.items():
        if re.search(r"(?:^|\s|ב)" + re.escape(word) + r"(?=$|[\s,.?!])", t):
            found.add(h % 12)
    return found


def names_a_day(text: str, now: dt.datetime) -> bool:
    """The words name a day (a weekday, today, tomorrow): "can we move it to Thursday?"."""
    t = text.lower()
    return bool(_weekdays_named(t)) or bool(re.search(r"מחר|היום|tomorrow|today", t))


def pick(
    text: str, windows: Sequence[dt.datetime], now: dt.datetime,
    free: Callable[[dt.datetime], bool] = lambda _at: True, rules: MeetingRules | None = None,
) -> Pick:
    """Which offered window the caller chose; a named open weekday outside the offer also counts."""
    t = text.lower().strip()
    if not windows:
        return Pick("unknown")
    if _NONE.search(t):
        return Pick("none")
    for pattern, index in _ORDINALS:
        if pattern.search(t) and -len(windows) <= index < len(windows):
            return Pick("window", windows[index])
    today = now.astimezone(TZ).date()
    days_named = _weekdays_named(t)
    if re.search(r"מחר|tomorrow", t) and not re.search(r"מחרתיים", t):
        days_named.add((today + dt.timedelta(days=1)).weekday())
    if re.search(r"היום|today", t):
        days_named.add(today.weekday())
    hours_named = _hours_named(t)
    scores = []
    for w in windows:
        score = (2 if w.weekday() in days_named else 0) + (1 if (w.hour % 12) in hours_named else 0)
        scores.append(score)
    best = max(scores)
    if best > 0 and scores.count(best) == 1:
        return Pick("window", windows[scores.index(best)])
    if days_named and best < 2:
        # A day we did not offer: its first open slot, if it has one.
        for slot in slots_from(now, days=8, rules=rules or MEETING):
            if slot.weekday() in days_named and (not hours_named or slot.hour % 12 in hours_named) and free(slot):
                return Pick("window", slot)
        return Pick("none")
    if _ANY.search(t):
        return Pick("window", windows[0])
    return Pick("unknown")
