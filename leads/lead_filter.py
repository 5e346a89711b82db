"""The dashboard's leads-list filter, read from a query string (pure: no database).

``status``, ``source``: exact values; ``needs_person=1``: only leads the WhatsApp brain handed
to a person (flag not yet cleared); ``since`` / ``until``: days (YYYY-MM-DD) in
Asia/Jerusalem, both inclusive, on the day the lead came in (``created_at``); ``q``: a name
(case-insensitive substring) or a phone number in any form people type ("050-123", "4567",
"+972 50…"). A bad value raises :class:`~leads.fields.InvalidField` naming the parameter.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Mapping
from zoneinfo import ZoneInfo

from leads.fields import InvalidField

JERUSALEM = ZoneInfo("Asia/Jerusalem")
# any word the brain or the inflow may set (new, qualified, meeting_booked, lost, ...)
_STATUS = re.compile(r"[a-z_]{1,32}")
Q_MAX = 100
SOURCE_MAX = 64
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_DIGIT = re.compile(r"\D")
_PHONE_LIKE = re.compile(r"[0-9+\-(). ]+")
COUNTRY = "972"  # a local number's leading 0 stands for it (leads.fields reads local numbers as Israeli)


@dataclasses.dataclass(frozen=True)
class LeadFilter:
    status: str | None = None
    source: str | None = None
    since: dt.datetime | None = None  # aware UTC, inclusive
    until: dt.datetime | None = None  # aware UTC, exclusive (the day after `until`, 00:00 local)
    name: str | None = None  # substring of the name
    digits: str | None = None  # substring of the E.164 digits
    needs_person: bool = False

    @property
    def empty(self) -> bool:
        return self == LeadFilter()


def _day(value: str, field: str) -> dt.date:
    if not _DATE.fullmatch(value):
        raise InvalidField(field, "not a day (YYYY-MM-DD)", value)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidField(field, "not a day (YYYY-MM-DD)", value) from None


def local_midnight(day: dt.date) -> dt.datetime:
    """00:00 of ``day`` in Israel, as UTC (DST-aware)."""
    return dt.datetime.combine(day, dt.time(0), JERUSALEM).astimezone(dt.timezone.utc)


def phone_digits(q: str) -> str | None:
    """The digits a phone-number search means in E.164 ("050-123" -> "97250123"), or None when
    ``q`` is not phone-shaped (then it is a name)."""
    if not _PHONE_LIKE.fullmatch(q):
        return None
    digits = _NOT_DIGIT.sub("", q)
    if len(digits) < 3:
        return None if not digits else digits
    if not q.lstrip().startswith("+") and digits.startswith("0"):
        digits = COUNTRY + digits[1:]
    return digits


def parse(args: Mapping[str, str]) -> LeadFilter:
    def value(key: str, limit: int) -> str | None:
        v = (args.get(key) or "").strip()
        if len(v) > limit:
            raise InvalidField(key, f"longer than {limit} characters", v)
        return v or None

    status = value("status", 32)
    if status is not None and not _STATUS.fullmatch(status):
        raise InvalidField("status", "not a status (lower-case letters and _)", status)
    source = value("source", SOURCE_MAX)
    since_s, until_s = value("since", 10), value("until", 10)
    since = local_midnight(_day(since_s, "since")) if since_s else None
    until = local_midnight(_day(until_s, "until") + dt.timedelta(days=1)) if until_s else None
    if since and until and until <= since:
        raise InvalidField("until", "before since", until_s)
    q = value("q", Q_MAX)
    digits = phone_digits(q) if q else None
    flag = value("needs_person", 5)
    if flag not in (None, "0", "1", "true", "false"):
        raise InvalidField("needs_person", "not 1 or 0", flag)
    return LeadFilter(status, source, since, until, None if digits else q, digits, flag in ("1", "true"))
