"""When the dialer may call a lead: decent hours in Asia/Jerusalem.

Pure: every function takes the moment it judges; nothing reads a clock.

Default: Sunday–Thursday 09:00–20:00, Friday 09:00–13:00, never on Shabbat nor on an Israeli
public holiday (the ``holidays`` package's IL calendar, the one dialog.schedule uses); the
eve of a holiday has Friday's hours. Everything is configurable (:meth:`CallingHours.parse`,
DIAL_HOURS / DIAL_HOLIDAYS): ``"sun-thu 09:00-20:00; fri 09:00-13:00"``.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

TZ = ZoneInfo("Asia/Jerusalem")
DEFAULT_HOURS = "sun-thu 09:00-20:00; fri 09:00-13:00"
DEFAULT_EVE_HOURS = "09:00-13:00"
# Python weekday(): Monday=0 ... Sunday=6
_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_ORDER = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # an Israeli week, for ranges
_PART = re.compile(r"^\s*([a-z]{3})(?:-([a-z]{3}))?\s+(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\s*$")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\s*$")
SEARCH_DAYS = 30  # a week of Sukkot and its Shabbatot still leaves an open day in this range

Span = tuple[dt.time, dt.time]


@lru_cache(maxsize=16)
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


def _span(h1: str, m1: str, h2: str, m2: str, spec: str) -> Span:
    try:
        start, end = dt.time(int(h1), int(m1)), dt.time(int(h2) % 24, int(m2))
    except ValueError:
        raise ValueError(f"{spec!r}: not a time range") from None
    if int(h2) == 24:
        end = dt.time(23, 59, 59)
    if end <= start:
        raise ValueError(f"{spec!r}: the range ends before it starts")
    return start, end


@dataclass(frozen=True)
class CallingHours:
    """Open spans per weekday (Python numbering), the holiday calendar and the eves' span."""

    week: dict[int, Span] = field(default_factory=dict)
    holiday_country: str | None = "IL"
    eve: Span | None = (dt.time(9), dt.time(13))

    @classmethod
    def parse(cls, spec: str | None = None, holidays_country: str | None = "IL",
              eve: str | None = DEFAULT_EVE_HOURS) -> "CallingHours":
        """``"sun-thu 09:00-20:00; fri 09:00-13:00"`` (days not named are closed);
        ``holidays_country`` "" or "none": no holiday calendar; ``eve`` "" : eves as usual."""
        spec = (spec or DEFAULT_HOURS).strip().lower()
        week: dict[int, Span] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            m = _PART.match(part)
            if not m or m.group(1) not in _DAYS or (m.group(2) and m.group(2) not in _DAYS):
                raise ValueError(f"{part!r}: expected like 'sun-thu 09:00-20:00'")
            first, last = _ORDER.index(m.group(1)), _ORDER.index(m.group(2) or m.group(1))
            if last < first:
                raise ValueError(f"{part!r}: the day range runs backwards (the week starts on sunday)")
            span = _span(*m.group(3, 4, 5, 6), spec=part)
            for name in _ORDER[first:last + 1]:
                week[_DAYS[name]] = span
        country = (holidays_country or "").strip().upper()
        eve_span = None
        if eve and eve.strip():
            m = _SPAN.match(eve)
            if not m:
                raise ValueError(f"{eve!r}: expected like '09:00-13:00'")
            eve_span = _span(*m.group(1, 2, 3, 4), spec=eve)
        return cls(week, None if country in ("", "NONE") else country, eve_span)

    def is_holiday(self, day: dt.date) -> bool:
        return self.holiday_country is not None and day in _calendar(self.holiday_country, day.year)

    def span_on(self, day: dt.date) -> Span | None:
        """The open span of a local date (None: closed all day)."""
        if self.is_holiday(day):
            return None
        span = self.week.get(day.weekday())
        if span is None:
            return None
        if self.eve is not None and self.is_holiday(day + dt.timedelta(days=1)):
            start, end = max(span[0], self.eve[0]), min(span[1], self.eve[1])
            return (start, end) if start < end else None
        return span

    def allowed(self, at: dt.datetime) -> bool:
        local = at.astimezone(TZ)
        span = self.span_on(local.date())
        return span is not None and span[0] <= local.time() < span[1]

    def next_allowed(self, at: dt.datetime) -> dt.datetime:
        """``at`` itself when calling is allowed then, else the next opening (aware UTC)."""
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        local = at.astimezone(TZ)
        for offset in range(SEARCH_DAYS + 1):
            day = local.date() + dt.timedelta(days=offset)
            span = self.span_on(day)
            if span is None:
                continue
            opens = dt.datetime.combine(day, span[0], TZ)
            closes = dt.datetime.combine(day, span[1], TZ)
            if local < opens:
                return opens.astimezone(dt.timezone.utc)
            if local < closes:
                return at.astimezone(dt.timezone.utc)
        raise ValueError(f"no calling hours in the {SEARCH_DAYS} days after {local:%Y-%m-%d}")

    def at_local(self, day: dt.date, time: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, time, TZ)


# -- the retry schedule ----------------------------------------------------------------------

_STEP = re.compile(r"^\s*(?:\+?(\d+(?:\.\d+)?)\s*(s|m|h|d)|next[_ ]day@(\d{1,2}):(\d{2}))\s*$")
DEFAULT_RETRIES = "10m, 2h, next_day@10:00"


@dataclass(frozen=True)
class Step:
    """One retry: ``delay`` after the failed attempt, or the next day at ``time`` (local)."""

    delay: dt.timedelta | None = None
    time: dt.time | None = None

    def after(self, failed_at: dt.datetime) -> dt.datetime:
        if self.delay is not None:
            return failed_at + self.delay
        local = failed_at.astimezone(TZ)
        assert self.time is not None
        return dt.datetime.combine(local.date() + dt.timedelta(days=1), self.time, TZ).astimezone(dt.timezone.utc)


def parse_retries(spec: str | None = None) -> tuple[Step, ...]:
    """``"10m, 2h, next_day@10:00"`` -> the retries after the 1st, 2nd, 3rd failed attempt."""
    steps: list[Step] = []
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    for part in filter(None, (p.strip() for p in (spec if spec is not None else DEFAULT_RETRIES).split(","))):
        m = _STEP.match(part.lower())
        if not m:
            raise ValueError(f"{part!r}: expected like '10m', '2h' or 'next_day@10:00'")
        if m.group(1):
            steps.append(Step(delay=dt.timedelta(**{units[m.group(2)]: float(m.group(1))})))
        else:
            steps.append(Step(time=dt.time(int(m.group(3)), int(m.group(4)))))
    return tuple(steps)


def next_attempt(retries: tuple[Step, ...], attempts: int, failed_at: dt.datetime,
                 hours: CallingHours) -> dt.datetime | None:
    """When to try again after ``attempts`` calls that did not reach the lead (None: give up)."""
    if attempts < 1 or attempts > len(retries):
        return None
    step = retries[attempts - 1]
    if step.time is not None:
        # "next day at 10:00" is the next day we call at all (Friday's failure: Sunday 10:00).
        day = failed_at.astimezone(TZ).date()
        for _ in range(SEARCH_DAYS):
            day += dt.timedelta(days=1)
            if hours.span_on(day) is not None:
                return hours.next_allowed(dt.datetime.combine(day, step.time, TZ))
    return hours.next_allowed(step.after(failed_at))
