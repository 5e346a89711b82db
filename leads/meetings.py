"""Meetings in the realtors' calendars: what is free, booking, rescheduling, cancelling.

:class:`Meetings` is the one object the call (dialog.booking) and any other flow (WhatsApp:
"can we move it to Thursday?") go through. Its public coroutines:

- ``await meetings.busy(realtor)`` — busy intervals for the next weeks (cached for
  ``refresh_s``; a background task keeps the cache warm so a call rarely waits);
- ``await meetings.book(booking)`` → ``"booked"`` | ``"taken"`` | ``"offline"``: re-checks the
  slot in the calendar itself (not the cache), then creates the event; "taken" means the
  caller must be offered another window; "offline" that the calendar did not answer in time
  (the meeting is kept in our database and the call goes on: today's rules); a realtor with
  no calendar: "booked" (in our database only);
- ``await meetings.reschedule(uid, starts_at)`` → the same outcomes, for an existing meeting;
- ``await meetings.cancel(uid)`` → True when it was booked (the event is deleted);
- ``await meetings.active_for(phone)`` — the lead's upcoming meeting, if any;
- ``await meetings.free_windows(realtor, now)`` — the next windows to offer;
- ``meetings.ics_url(uid, starts_at)`` — the signed add-to-calendar link for the summary.

By the lead's phone (and updating the lead's row too): :mod:`leads.lead_meetings`.

Calendar I/O runs in worker threads (``trio.to_thread``) under a :class:`trio.CapacityLimiter`
and ``timeout_s``: a calendar that is down or slow costs a call at most that long, once per
``refresh_s``, and says so in a CALENDAR log line. Database I/O goes through the store's own
threads.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, TypeVar

import sqlalchemy as sa
import trio

from dialog import schedule
from leads import caldav_client, schema
from leads.ics import MeetingEvent, to_ics
from leads.realtors import Realtor, Realtors, load_realtors
from leads.store import Store
from native.config import ConfigError
from telemetry.logs import log_event

T = TypeVar("T")
Outcome = Literal["booked", "taken", "offline"]
DEFAULT_TIMEOUT_S = 2.0  # a turn may wait for two calendar requests; the session allows a sentence 8 s
DEFAULT_REFRESH_S = 60.0
CALENDAR_THREADS = 4
LINK_DAYS_AFTER = 30  # the .ics link keeps working this long after the meeting


@dataclass(frozen=True, slots=True)
class MeetingsConfig:
    rules: schedule.MeetingRules = schedule.MEETING
    timeout_s: float = DEFAULT_TIMEOUT_S
    refresh_s: float = DEFAULT_REFRESH_S
    horizon_days: int = schedule.HORIZON_DAYS
    public_base_url: str | None = None
    link_key: bytes = b""  # HMAC key of the .ics links (a subkey of the server secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str], public_base_url: str | None, link_key: bytes) -> "MeetingsConfig":
        def number(name: str, default: float, low: float, high: float) -> float:
            raw = (env.get(name) or "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number") from None
            if not low <= value <= high:
                raise ConfigError(f"{name}={raw!r} must be between {low:g} and {high:g}")
            return value

        def hours(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
            raw = (env.get(name) or "").strip()
            if not raw:
                return default
            try:
                found = sorted({int(h) for h in raw.split(",") if h.strip()})
            except ValueError:
                raise ConfigError(f"{name}={raw!r}: whole hours, comma-separated (e.g. 9,10,11,14,15,16)") from None
            if not found or not all(6 <= h <= 21 for h in found):
                raise ConfigError(f"{name}={raw!r}: hours between 6 and 21")
            return tuple(found)

        rules = schedule.MeetingRules(
            duration=dt.timedelta(minutes=number("MEETING_MINUTES", 60, 10, 240)),
            buffer=dt.timedelta(minutes=number("MEETING_BUFFER_MINUTES", 30, 0, 240)),
            weekday_hours=hours("MEETING_HOURS", schedule.WEEKDAY_HOURS),
            short_day_hours=hours("MEETING_SHORT_DAY_HOURS", schedule.SHORT_DAY_HOURS),
        )
        return cls(
            rules=rules,
            timeout_s=number("CALENDAR_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_S, 0.1, 60),
            refresh_s=number("CALENDAR_REFRESH_SECONDS", DEFAULT_REFRESH_S, 1, 3600),
            public_base_url=public_base_url.rstrip("/") if public_base_url else None,
            link_key=link_key,
        )


@dataclass(frozen=True, slots=True)
class Booking:
    """A meeting to put in a realtor's calendar: the lead's details go in the event."""

    uid: str
    realtor: str
    phone: str
    starts_at: dt.datetime
    call_sid: str | None = None
    name: str | None = None
    area: str | None = None
    property_type: str | None = None
    rooms: float | None = None
    budget_ils: int | None = None
    deal: str | None = None


@dataclass(frozen=True, slots=True)
class Meeting:
    """A row of the meetings table."""

    uid: str
    realtor: str
    phone: str
    call_sid: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    href: str | None
    details: dict[str, Any]


def new_uid() -> str:
    return f"{uuid.uuid4().hex}@agentlocator"


class Meetings:
    def __init__(
        self, realtors: Realtors, store: Store, config: MeetingsConfig | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self.realtors = realtors
        self.store = store
        self.config = config or MeetingsConfig()
        self.clock = clock
        self.limiter = trio.CapacityLimiter(CALENDAR_THREADS)
        self._cache: dict[str, tuple[float, list[schedule.Busy]]] = {}
        self._down: dict[str, float] = {}  # realtor -> when their calendar last failed (trio time)
        self._fetching: dict[str, trio.Lock] = {}  # one busy fetch per realtor at a time
        self._booking_locks: dict[str, trio.Lock] = {}  # one booking per realtor at a time

    @property
    def rules(self) -> schedule.MeetingRules:
        return self.config.rules

    def describe(self) -> str:
        """The startup line: who has a calendar."""
        if not self.realtors:
            return "calendar: none (CALENDAR_URL / REALTORS unset): meeting windows follow the office-hour rules"
        with_cal = [r.name for r in self.realtors.all if r.calendar]
        without = [r.name for r in self.realtors.all if not r.calendar]
        said = f"calendar: CalDAV for {', '.join(with_cal) or 'no one'}"
        if without:
            said += f"; office-hour rules only for {', '.join(without)}"
        return said

    def pick(self, area: str | None) -> Realtor | None:
        return self.realtors.pick(area)

    # -- calendar I/O, bounded ------------------------------------------------------------------

    async def _calendar(self, realtor: Realtor, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """``fn(*args)`` in a worker thread within ``timeout_s``; None (and a CALENDAR line)
        when the calendar fails or is too slow."""
        error: str | None = None
        with trio.move_on_after(self.config.timeout_s):
            try:
                result = await trio.to_thread.run_sync(fn, *args, limiter=self.limiter, abandon_on_cancel=True)
            except Exception as exc:  # caldav_client.CalendarError and whatever a broken server makes it raise
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            else:
                if self._down.pop(realtor.name, None) is not None:
                    log_event("CALENDAR", realtor=realtor.name, state="up", op=what)
                return result
        # Said when it goes down (and again when it comes back), not at every retry.
        level = logging.DEBUG if realtor.name in self._down else logging.WARNING
        log_event("CALENDAR", level, realtor=realtor.name, state="down", op=what,
                  error=error or f"no answer within {self.config.timeout_s:g}s",
                  note="meeting windows follow the office-hour rules; the call goes on")
        self._down[realtor.name] = trio.current_time()
        return None

    def _recently_down(self, realtor: Realtor) -> bool:
        since = self._down.get(realtor.name)
        return since is not None and trio.current_time() - since < self.config.refresh_s

    def _window(self) -> tuple[dt.datetime, dt.datetime]:
        now = self.clock()
        return now, now + dt.timedelta(days=self.config.horizon_days + 1)

    async def busy(self, realtor: Realtor, max_age_s: float | None = None) -> list[schedule.Busy]:
        """The realtor's busy intervals from now over the offer horizon ([] without a calendar,
        or when it does not answer: the office-hour rules then decide alone)."""
        if realtor.calendar is None:
            return []
        max_age = self.config.refresh_s if max_age_s is None else max_age_s
        cached = self._cache.get(realtor.name)
        if cached is not None and trio.current_time() - cached[0] <= max_age:
            return cached[1]
        lock = self._fetching.setdefault(realtor.name, trio.Lock())
        async with lock:  # calls starting together wait for one fetch, not one each
            cached = self._cache.get(realtor.name)
            if cached is not None and trio.current_time() - cached[0] <= max_age:
                return cached[1]
            return await self._fetch_busy(realtor, cached)

    async def _fetch_busy(self, realtor: Realtor, cached: tuple[float, list[schedule.Busy]] | None) -> list[schedule.Busy]:
        assert realtor.calendar is not None
        start, end = self._window()
        found = await self._calendar(realtor, "busy", caldav_client.fetch_busy, realtor.calendar, start, end,
                                     self.config.timeout_s)
        if found is None:
            # Down: what we knew (or nothing: office-hour rules), not asked again until the next
            # refresh, so one dead calendar does not cost every turn a timeout.
            found = cached[1] if cached is not None else []
        self._cache[realtor.name] = (trio.current_time(), found)
        return found

    def cached_busy(self, realtor: Realtor) -> list[schedule.Busy] | None:
        cached = self._cache.get(realtor.name)
        return None if cached is None else cached[1]

    async def refresh_all(self) -> None:
        """Background task: keep every calendar's busy list fresh, so calls read it at once;
        and learn whom other server processes gave leads to (round-robin across them)."""
        while True:
            for realtor in self.realtors.all:
                if realtor.calendar is not None:
                    await self.busy(realtor, max_age_s=self.config.refresh_s / 2)
            await self.learn_assignments()
            await trio.sleep(self.config.refresh_s / 2)

    async def learn_assignments(self) -> None:
        try:
            latest = await self.store.run(self._latest_bookings)
        except Exception as exc:  # the database is down: round-robin goes on from what we knew
            log_event("ERROR", logging.ERROR, where="meetings.learn_assignments", error=repr(exc)[:300])
            return
        for name, when in latest:
            if when is not None:
                self.realtors.note_assigned(name, schema.utc(when).timestamp())  # type: ignore[union-attr]

    def _latest_bookings(self) -> list[tuple[str, dt.datetime | None]]:
        t = schema.meetings
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.realtor, sa.func.max(t.c.created_at)).group_by(t.c.realtor)).all()
        return [(r[0], r[1]) for r in rows]

    async def _slot_free(self, realtor: Realtor, starts_at: dt.datetime, uid: str) -> bool | None:
        """The slot checked in the calendar itself (the cache may be a minute old); None: no answer."""
        assert realtor.calendar is not None
        rules = self.rules
        start, end = starts_at - rules.buffer, starts_at + rules.duration + rules.buffer
        found = await self._calendar(realtor, "check", caldav_client.fetch_busy, realtor.calendar, start, end,
                                     self.config.timeout_s, uid)
        if found is None:
            return None
        return schedule.is_free(starts_at, found, rules)

    # -- booking -----------------------------------------------------------------------------------

    def _event(self, booking: Booking, sequence: int = 0) -> MeetingEvent:
        call_url = None
        if booking.call_sid and self.config.public_base_url:
            call_url = f"{self.config.public_base_url}/dashboard/calls/{booking.call_sid}"
        return MeetingEvent(
            uid=booking.uid, starts_at=booking.starts_at, ends_at=booking.starts_at + self.rules.duration,
            realtor=booking.realtor, name=booking.name, phone=booking.phone, area=booking.area,
            property_type=booking.property_type, rooms=booking.rooms, budget_ils=booking.budget_ils,
            deal=booking.deal, call_url=call_url, sequence=sequence,
        )

    async def book(self, booking: Booking) -> Outcome:
        """Re-check the slot, then create the event and the meetings row."""
        return await self._put(booking, sequence=0, op="book")

    async def _put(self, booking: Booking, sequence: int, op: str,
                   previous: tuple[Booking, int] | None = None) -> Outcome:
        """Check, PUT, check again; then our row. ``previous``: the meeting as it stands (a
        reschedule), put back if the new time turns out taken after all."""
        realtor = self.realtors.by_name(booking.realtor)
        event = self._event(booking, sequence)
        href: str | None = None
        # No calendar for this realtor: our database is where the meeting lives ("booked");
        # a calendar that is down or slow: "offline" (kept here, the calendar not told).
        outcome: Outcome = "offline" if realtor is not None and realtor.calendar is not None else "booked"
        if realtor is not None and realtor.calendar is not None and not self._recently_down(realtor):
            # One booking per realtor at a time in this process; between processes (CalDAV has
            # no transactions) the check after the PUT: of two writers racing for one slot,
            # the later check always sees the other's event, so at most one keeps it.
            async with self._booking_locks.setdefault(realtor.name, trio.Lock()):
                free = await self._slot_free(realtor, booking.starts_at, booking.uid)
                if free is True:
                    ics = to_ics(event, self.clock())
                    href = await self._calendar(realtor, op, caldav_client.put_event, realtor.calendar, booking.uid,
                                                ics, self.config.timeout_s)
                    if href is not None and await self._slot_free(realtor, booking.starts_at, booking.uid) is False:
                        await self._withdraw(realtor, booking, previous)
                        free = False
                if free is False:
                    log_event("MEETING", op=op, outcome="taken", realtor=realtor.name, uid=booking.uid,
                              starts_at=booking.starts_at.isoformat(), call_sid=booking.call_sid)
                    self._forget(realtor)
                    return "taken"
                if href is not None:
                    outcome = "booked"
                    self._note_busy(realtor, booking.uid, event)
        try:
            await self.store.run(self._write, event, booking, href)
        except Exception as exc:  # the database is down: the event stands, the call goes on
            log_event("ERROR", logging.ERROR, where="meetings.write", uid=booking.uid, error=repr(exc)[:300])
        log_event("MEETING", op=op, outcome=outcome, realtor=booking.realtor, uid=booking.uid,
                  starts_at=booking.starts_at.isoformat(), call_sid=booking.call_sid,
                  calendar=realtor is not None and realtor.calendar is not None)
        return outcome

    async def _withdraw(self, realtor: Realtor, booking: Booking, previous: tuple[Booking, int] | None) -> None:
        """Someone else's event landed in our slot between the check and the PUT: take ours
        back (a new booking: delete it; a move: the meeting back at its old time)."""
        assert realtor.calendar is not None
        if previous is None:
            await self._calendar(realtor, "withdraw", caldav_client.delete_event, realtor.calendar, booking.uid,
                                 self.config.timeout_s)
            return
        old, sequence = previous
        restored = self._event(old, sequence)
        await self._calendar(realtor, "withdraw", caldav_client.put_event, realtor.calendar, old.uid,
                             to_ics(restored, self.clock()), self.config.timeout_s)
        try:  # the row keeps the old time; only its sequence moves on
            row = await self.get(old.uid)
            await self.store.run(self._write, restored, old, row.href if row is not None else None)
        except Exception as exc:
            log_event("ERROR", logging.ERROR, where="meetings.withdraw", uid=old.uid, error=repr(exc)[:300])

    def _forget(self, realtor: Realtor) -> None:
        self._cache.pop(realtor.name, None)  # the calendar changed behind our back: read it again

    def _note_busy(self, realtor: Realtor, uid: str, event: MeetingEvent) -> None:
        """Our own booking, added to the cached busy list (other calls see it at once)."""
        cached = self._cache.get(realtor.name)
        if cached is not None:
            self._cache[realtor.name] = (cached[0], sorted([*cached[1], (event.starts_at, event.ends_at)]))

    def _write(self, event: MeetingEvent, booking: Booking, href: str | None) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        values = dict(
            realtor=booking.realtor, phone=booking.phone, call_sid=booking.call_sid,
            starts_at=event.starts_at.astimezone(dt.timezone.utc), ends_at=event.ends_at.astimezone(dt.timezone.utc),
            status="booked", href=href, details=event.details(), updated_at=now,
        )
        t = schema.meetings
        with self.store.engine.begin() as conn:
            done = conn.execute(t.update().where(t.c.uid == booking.uid).values(**values)).rowcount
            if not done:
                conn.execute(t.insert().values(uid=booking.uid, created_at=now, **values))

    async def get(self, uid: str) -> Meeting | None:
        return await self.store.run(self._get, uid)

    def _get(self, uid: str) -> Meeting | None:
        t = schema.meetings
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.uid == uid)).mappings().first()
        return _meeting(row) if row is not None else None

    async def active_for(self, phone: str) -> Meeting | None:
        """The lead's next booked meeting (the latest one booked, if several)."""
        return await self.store.run(self._active_for, phone)

    def _active_for(self, phone: str) -> Meeting | None:
        t = schema.meetings
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(t).where(t.c.phone == phone, t.c.status == "booked").order_by(t.c.updated_at.desc()).limit(1)
            ).mappings().first()
        return _meeting(row) if row is not None else None

    async def reschedule(self, uid: str, starts_at: dt.datetime) -> Outcome:
        """Move a booked meeting (same UID: calendars update the event in place)."""
        if starts_at.tzinfo is None:
            raise ValueError("starts_at must be timezone-aware")
        meeting = await self.get(uid)
        if meeting is None or meeting.status != "booked":
            raise LookupError(f"no booked meeting {uid!r}")
        d = meeting.details
        booking = Booking(
            uid=uid, realtor=meeting.realtor, phone=meeting.phone, starts_at=starts_at, call_sid=meeting.call_sid,
            name=d.get("name"), area=d.get("area"), property_type=d.get("property_type"), rooms=d.get("rooms"),
            budget_ils=d.get("budget_ils"), deal=d.get("deal"),
        )
        sequence = int(d.get("sequence") or 0)
        before = dataclasses.replace(booking, starts_at=meeting.starts_at)
        return await self._put(booking, sequence=sequence + 1, op="reschedule", previous=(before, sequence + 2))

    async def cancel(self, uid: str) -> bool:
        """Delete the event and mark the meeting cancelled; False when it was not booked."""
        meeting = await self.get(uid)
        if meeting is None or meeting.status != "booked":
            return False
        realtor = self.realtors.by_name(meeting.realtor)
        removed: bool | None = None
        if realtor is not None and realtor.calendar is not None:
            removed = await self._calendar(realtor, "cancel", caldav_client.delete_event, realtor.calendar, uid,
                                           self.config.timeout_s)
            cached = self._cache.get(realtor.name)
            if cached is not None:
                left = [b for b in cached[1] if b != (meeting.starts_at, meeting.ends_at)]
                self._cache[realtor.name] = (cached[0], left)
        try:
            await self.store.run(self._mark_cancelled, uid)
        except Exception as exc:
            log_event("ERROR", logging.ERROR, where="meetings.cancel", uid=uid, error=repr(exc)[:300])
        log_event("MEETING", op="cancel", outcome="cancelled" if removed is not False else "gone",
                  realtor=meeting.realtor, uid=uid, calendar=removed is not None)
        return True

    async def discard(self, uid: str, realtor_name: str) -> None:
        """A booking that may or may not have reached the calendar (cut off mid-way): delete the
        event by its UID if it is there, and mark our row cancelled if there is one."""
        if not await self.cancel(uid):
            realtor = self.realtors.by_name(realtor_name)
            if realtor is not None and realtor.calendar is not None:
                await self._calendar(realtor, "discard", caldav_client.delete_event, realtor.calendar, uid,
                                     self.config.timeout_s)

    def _mark_cancelled(self, uid: str) -> None:
        t = schema.meetings
        with self.store.engine.begin() as conn:
            conn.execute(t.update().where(t.c.uid == uid).values(status="cancelled", updated_at=dt.datetime.now(dt.timezone.utc)))

    async def free_windows(self, realtor: Realtor, now: dt.datetime, count: int = 2,
                           exclude: tuple[dt.datetime, ...] = ()) -> list[dt.datetime]:
        """The next windows to offer (for a reschedule by message, say)."""
        busy = await self.busy(realtor)
        return schedule.offer_windows(now, count, exclude=exclude, busy=busy, rules=self.rules)

    # -- the add-to-calendar link ------------------------------------------------------------------

    def _sig(self, uid: str, expires: int) -> str:
        mac = hmac.new(self.config.link_key, f"ics|{uid}|{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def ics_url(self, uid: str, starts_at: dt.datetime) -> str | None:
        """``{PUBLIC_BASE_URL}/meetings/{uid}.ics?e=..&sig=..`` (None without a public URL or key)."""
        if not self.config.public_base_url or not self.config.link_key:
            return None
        expires = int((starts_at + dt.timedelta(days=LINK_DAYS_AFTER)).timestamp())
        return f"{self.config.public_base_url}/meetings/{uid}.ics?e={expires}&sig={self._sig(uid, expires)}"

    def link_ok(self, uid: str, expires: str | None, sig: str | None) -> bool:
        if not self.config.link_key or not expires or not sig or not expires.isdigit():
            return False
        if int(expires) < self.clock().timestamp():
            return False
        return hmac.compare_digest(self._sig(uid, int(expires)), sig)

    async def ics_of(self, uid: str) -> str | None:
        """The booked meeting as an .ics file (None: unknown or cancelled)."""
        meeting = await self.get(uid)
        if meeting is None or meeting.status != "booked":
            return None
        d = meeting.details
        event = MeetingEvent(
            uid=uid, starts_at=meeting.starts_at, ends_at=meeting.ends_at, realtor=meeting.realtor,
            name=d.get("name"), phone=None, area=d.get("area"), property_type=d.get("property_type"),
            rooms=d.get("rooms"), budget_ils=d.get("budget_ils"), deal=d.get("deal"),
            sequence=int(d.get("sequence") or 0),
        )
        return to_ics(event, self.clock(), method="PUBLISH")


def _meeting(row: Mapping[str, Any]) -> Meeting:
    return Meeting(
        uid=row["uid"], realtor=row["realtor"], phone=row["phone"], call_sid=row["call_sid"],
        starts_at=schema.utc(row["starts_at"]), ends_at=schema.utc(row["ends_at"]),  # type: ignore[arg-type]
        status=row["status"], href=row["href"], details=dict(row["details"] or {}),
    )


def open_meetings(env: Mapping[str, str], store: Store, public_base_url: str | None, link_key: bytes) -> Meetings:
    """From the environment (README "Meetings in the realtor's calendar")."""
    return Meetings(load_realtors(env), store, MeetingsConfig.from_env(env, public_base_url, link_key))

