"""The realtor's calendar over CalDAV (RFC 4791), through the ``caldav`` library.

Blocking by nature (``caldav`` speaks HTTP through ``requests``): every function here runs
in a worker thread of :class:`leads.meetings.Meetings`, under its limiter and timeout, never
on the event loop. Each call opens its own client: a ``requests`` session is not shared
between threads, and a booking is a few requests a minute at most.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable
from urllib.parse import quote
from zoneinfo import ZoneInfo

import caldav
import requests
from caldav.lib import error as caldav_error

from leads.realtors import CalendarAccess

TZ = ZoneInfo("Asia/Jerusalem")
Busy = tuple[dt.datetime, dt.datetime]

# What a calendar that is down, slow or refusing us raises (besides our own timeout).
CalendarError = (caldav_error.DAVError, OSError, ValueError)


def _calendar(access: CalendarAccess, timeout_s: float) -> Any:
    # Basic credentials sent up front: no 401 round trip first (servers delay a failed
    # login, Radicale by a second), and every CalDAV host we target (Fastmail, iCloud,
    # Nextcloud app passwords) takes Basic over TLS.
    auth = requests.auth.HTTPBasicAuth(access.user, access.password or "") if access.user else None
    client = caldav.DAVClient(url=access.url, auth=auth, timeout=timeout_s)
    return client.calendar(url=access.url)


def _aware(value: dt.date | dt.datetime, end: bool = False) -> dt.datetime:
    """iCalendar times as aware datetimes: a floating time is Israel time; a date (all-day) is
    its midnight in Israel."""
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=TZ)
    if value.tzinfo is None:
        return value.replace(tzinfo=TZ)
    return value


def busy_intervals(components: Iterable[Any], exclude_uid: str | None = None) -> list[Busy]:
    """The [start, end) of every VEVENT that takes time (not TRANSPARENT, not CANCELLED)."""
    out: list[Busy] = []
    for comp in components:
        if str(comp.get("uid", "")) == exclude_uid and exclude_uid:
            continue
        if str(comp.get("transp", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(comp.get("status", "")).upper() == "CANCELLED":
            continue
        start_prop = comp.get("dtstart")
        if start_prop is None:
            continue
        start = _aware(start_prop.dt)
        if comp.get("dtend") is not None:
            end = _aware(comp.get("dtend").dt)
        elif comp.get("duration") is not None:
            end = start + comp.get("duration").dt
        elif not isinstance(start_prop.dt, dt.datetime):
            end = start + dt.timedelta(days=1)  # an all-day event with no end: that day
        else:
            end = start
        out.append((start, end))
    return sorted(out)


def fetch_busy(access: CalendarAccess, start: dt.datetime, end: dt.datetime, timeout_s: float,
               exclude_uid: str | None = None) -> list[Busy]:
    """Busy intervals between ``start`` and ``end`` (recurring events expanded)."""
    calendar = _calendar(access, timeout_s)
    found = calendar.search(start=start, end=end, event=True, expand=True)
    components: list[Any] = []
    for obj in found:
        components.extend(obj.icalendar_instance.walk("VEVENT"))
    return busy_intervals(components, exclude_uid)


def put_event(access: CalendarAccess, uid: str, ics: str, timeout_s: float) -> str:
    """Create or replace the event at ``<calendar>/<uid>.ics``; the object's URL.

    A plain CalDAV PUT: ``caldav``'s own save bumps SEQUENCE by one on every save, and ours
    already counts the reschedules (a client shows the newest version by it)."""
    calendar = _calendar(access, timeout_s)
    url = calendar.url.join(quote(uid, safe="@") + ".ics")
    response = calendar.client.put(str(url), ics.encode("utf-8"), {"Content-Type": 'text/calendar; charset="utf-8"'})
    if response.status not in (200, 201, 204):
        raise caldav_error.PutError(f"PUT {url}: {response.status} {response.reason}")
    return str(url)


def delete_event(access: CalendarAccess, uid: str, timeout_s: float) -> bool:
    """Remove the event with ``uid``; False when it was not there (already gone)."""
    calendar = _calendar(access, timeout_s)
    try:
        event = calendar.event_by_uid(uid)
    except caldav_error.NotFoundError:
        return False
    event.delete()
    return True
