"""The realtor's calendar, against a real CalDAV server (Radicale, conftest.py): the windows
the agent offers are free there, a booking lands there in Israel time (across the DST change),
a slot taken between the offer and the yes is handled, cancel and reschedule follow."""
from __future__ import annotations

import datetime as dt
import json
import socket
from types import SimpleNamespace

import icalendar
import pytest
import sqlalchemy as sa
import trio

from dialog import schedule
from dialog.base import CallerTurn
from dialog.rules import RuleBrain
from leads import schema
from leads.ics import MeetingEvent, to_ics
from leads.meetings import Booking, Meetings, MeetingsConfig, new_uid
from leads.realtors import CalendarAccess, Realtor, Realtors
from server.meeting_brain import CalendarBrain

TZ = schedule.TZ
# Wednesday before the clocks go forward (Friday 26 March 2027, 02:00): Israel is at +02:00.
NOW = dt.datetime(2027, 3, 24, 8, 0, tzinfo=TZ)
CALLER = "+972501234567"
RULES = schedule.MeetingRules(dt.timedelta(minutes=60), dt.timedelta(minutes=30))
UP_TO_NAME = ["a 4 room apartment in Tel Aviv", "two million", "within a year", "my name is Dana"]


def meetings_for(access: CalendarAccess | None, store, *, now: dt.datetime = NOW, timeout_s: float = 5.0,
                 name: str = "dana") -> Meetings:
    config = MeetingsConfig(rules=RULES, timeout_s=timeout_s, public_base_url="https://agent.example",
                            link_key=b"k" * 32)
    return Meetings(Realtors([Realtor(name, frozenset(), access)]), store, config, clock=lambda: now)


def foreign_event(calendar, start: dt.datetime, end: dt.datetime, **extra: str) -> None:
    """Something else in the realtor's day (put there by another client)."""
    event = MeetingEvent(new_uid(), start, end, name="dentist")
    ics = to_ics(event, NOW)
    if extra:
        cal = icalendar.Calendar.from_ical(ics)
        for comp in cal.walk("VEVENT"):
            for key, value in extra.items():
                comp[key] = value
        ics = cal.to_ical().decode()
    calendar.save_event(ics)


def all_day(calendar, day: dt.date) -> None:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//test//")
    cal.add("version", "2.0")
    ev = icalendar.Event()
    ev.add("uid", new_uid())
    ev.add("dtstamp", NOW)
    ev.add("dtstart", day)
    ev.add("dtend", day + dt.timedelta(days=1))
    ev.add("summary", "day off")
    cal.add_component(ev)
    calendar.save_event(cal.to_ical().decode())


def ours(calendar) -> list[icalendar.cal.Component]:
    return [c for obj in calendar.events() for c in obj.icalendar_instance.walk("VEVENT")
            if str(c["uid"]).endswith("@agentlocator") and str(c.get("summary", "")).startswith("AgentLocator: Dana")]


def new_brain(meetings: Meetings, now: dt.datetime = NOW) -> CalendarBrain:
    brain = CalendarBrain(RuleBrain("en-US", CALLER, now), meetings, CALLER, "en-US")
    brain.bind_call("CA" + "0" * 32)
    brain.heard(brain.opening(), True)
    return brain


async def say(brain: CalendarBrain, text: str) -> str:
    reply = " ".join([s async for s in brain.respond(CallerTurn(text, 0.95))])
    brain.heard(reply, True)
    return reply


async def to_offer(brain: CalendarBrain) -> list[dt.datetime]:
    for text in UP_TO_NAME:
        await say(brain, text)
    reply = await say(brain, "yes")  # the caller ID is the number: the offer follows
    windows = list(brain.inner.dialog.windows)
    assert windows and "?" in reply, reply
    return windows


# -- offered windows -------------------------------------------------------------------------------


async def test_offered_windows_avoid_the_realtors_events_and_their_buffer(radicale, store) -> None:
    access, calendar = radicale.new_calendar()
    plain = schedule.offer_windows(NOW, 2)
    first, second = plain
    foreign_event(calendar, first - dt.timedelta(minutes=15), first + dt.timedelta(minutes=45))
    # Ends 20 minutes before the second window: inside the 30-minute buffer.
    foreign_event(calendar, second - dt.timedelta(minutes=80), second - dt.timedelta(minutes=20))
    # A transparent ("free") event does not block anything.
    third = schedule.offer_windows(NOW, 3, exclude=plain)[0]
    foreign_event(calendar, third, third + dt.timedelta(hours=1), transp="TRANSPARENT")

    brain = new_brain(meetings_for(access, store))
    windows = await to_offer(brain)
    assert first not in windows and second not in windows
    busy = await brain.meetings.busy(brain.realtor)
    assert len(busy) == 2
    assert all(schedule.is_free(w, busy, RULES) for w in windows)
    assert third in schedule.offer_windows(NOW, 3, busy=busy, rules=RULES)  # transparent: still free


async def test_without_a_calendar_the_office_hour_rules_decide(store) -> None:
    brain = new_brain(meetings_for(None, store))
    assert await to_offer(brain) == schedule.offer_windows(NOW, 2)
    await say(brain, "the first one")
    reply = await say(brain, "yes")
    assert brain.lead.status == "meeting_booked" and "Booked" in reply
    meeting = await brain.meetings.get(brain.uid)
    assert meeting is not None and meeting.href is None and meeting.status == "booked"


# -- booking, in Israel time ---------------------------------------------------------------------


async def test_a_booking_lands_in_the_calendar_in_israel_time_across_the_dst_change(radicale, store) -> None:
    access, calendar = radicale.new_calendar()
    for day in (24, 25):  # Wednesday and Thursday taken: the windows are from Friday the 26th, summer time
        all_day(calendar, dt.date(2027, 3, day))
    brain = new_brain(meetings_for(access, store))
    windows = await to_offer(brain)
    assert all(w.date() >= dt.date(2027, 3, 26) for w in windows)
    await say(brain, "the first one")
    reply = await say(brain, "yes")
    assert brain.lead.status == "meeting_booked" and "Booked" in reply, reply
    at = brain.lead.meeting_at
    assert at == windows[0]
    assert NOW.utcoffset() == dt.timedelta(hours=2) and at.utcoffset() == dt.timedelta(hours=3)

    [event] = ours(calendar)
    raw = calendar.event_by_uid(brain.uid).data
    assert f"DTSTART;TZID=Asia/Jerusalem:{at:%Y%m%dT%H%M%S}" in raw.replace("\r\n ", "")
    assert "BEGIN:VTIMEZONE" in raw and "TZID:Asia/Jerusalem" in raw
    start = event["dtstart"].dt
    assert start == at and start.utcoffset() == dt.timedelta(hours=3)
    assert start.astimezone(dt.timezone.utc).hour == at.hour - 3
    assert event["dtend"].dt - start == RULES.duration
    text = str(event["description"])
    for part in ("Dana", CALLER, "Tel Aviv", "2,000,000", f"/dashboard/calls/CA{'0' * 32}"):
        assert part in text, (part, text)

    meeting = await brain.meetings.get(brain.uid)
    assert meeting is not None and meeting.href and meeting.starts_at == at and meeting.realtor == "dana"
    # The WhatsApp summary carries the signed add-to-calendar link.
    summary = brain.summary()
    link = summary.rsplit("Add to your calendar: ", 1)[1].strip()
    path = link.removeprefix("https://agent.example")
    uid, query = path.removeprefix("/meetings/").split(".ics?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert uid == brain.uid and brain.meetings.link_ok(uid, params["e"], params["sig"])
    assert not brain.meetings.link_ok(uid, params["e"], params["sig"][:-2] + "AA")


async def test_a_winter_booking_keeps_its_wall_clock_time(radicale, store) -> None:
    access, calendar = radicale.new_calendar()
    meetings = meetings_for(access, store)
    at = dt.datetime(2027, 11, 2, 10, tzinfo=TZ)  # after the clocks went back (29 October)
    uid = new_uid()
    assert await meetings.book(Booking(uid, "dana", CALLER, at, name="Dana")) == "booked"
    start = calendar.event_by_uid(uid).icalendar_component["dtstart"].dt
    assert (start.hour, start.utcoffset()) == (10, dt.timedelta(hours=2))


# -- a conflict between the offer and the yes ------------------------------------------------------


async def test_a_slot_taken_between_offer_and_confirmation_gets_the_next_free_window(radicale, store) -> None:
    access, calendar = radicale.new_calendar()
    brain = new_brain(meetings_for(access, store))
    windows = await to_offer(brain)
    confirm = await say(brain, "the first one")
    assert "book" in confirm
    # Someone books the realtor's time meanwhile (another client, straight into the calendar).
    foreign_event(calendar, windows[0], windows[0] + dt.timedelta(minutes=45))
    reply = await say(brain, "yes")
    assert reply.startswith("Sorry, that time was just taken in the calendar.") and reply.endswith("?"), reply
    assert brain.lead.status != "meeting_booked" and brain.lead.meeting_at is None
    assert not ours(calendar)
    again = brain.inner.dialog.windows
    assert windows[0] not in again and again
    await say(brain, "the first one")
    booked = await say(brain, "yes")
    assert "Booked" in booked and brain.lead.meeting_at == again[0]
    [event] = ours(calendar)
    assert event["dtstart"].dt == again[0]


# -- cancel, reschedule, a change of mind ----------------------------------------------------------


async def booked_brain(radicale, store) -> tuple[CalendarBrain, object]:
    access, calendar = radicale.new_calendar()
    brain = new_brain(meetings_for(access, store))
    await to_offer(brain)
    await say(brain, "the first one")
    await say(brain, "yes")
    assert brain.lead.status == "meeting_booked" and len(ours(calendar)) == 1
    return brain, calendar


async def test_cancel_removes_the_event(radicale, store) -> None:
    brain, calendar = await booked_brain(radicale, store)
    assert await brain.meetings.cancel(brain.uid) is True
    assert ours(calendar) == []
    assert (await brain.meetings.get(brain.uid)).status == "cancelled"
    assert await brain.meetings.ics_of(brain.uid) is None
    assert await brain.meetings.cancel(brain.uid) is False  # twice: nothing to do
    assert await brain.meetings.active_for(CALLER) is None


async def test_reschedule_moves_the_event_and_refuses_a_busy_slot(radicale, store) -> None:
    brain, calendar = await booked_brain(radicale, store)
    meetings = brain.meetings
    before = brain.lead.meeting_at
    later = schedule.offer_windows(NOW, 3, exclude=[before])[-1]
    assert await meetings.reschedule(brain.uid, later) == "booked"
    [event] = ours(calendar)
    assert event["dtstart"].dt == later and int(event["sequence"]) == 1
    assert (await meetings.active_for(CALLER)).starts_at == later
    busy_slot = later + dt.timedelta(days=1)
    foreign_event(calendar, busy_slot, busy_slot + dt.timedelta(hours=1))
    assert await meetings.reschedule(brain.uid, busy_slot) == "taken"
    [event] = ours(calendar)
    assert event["dtstart"].dt == later
    with pytest.raises(LookupError):
        await meetings.reschedule("no-such-uid", later)


async def test_not_interested_after_booking_cancels_the_event(radicale, store) -> None:
    brain, calendar = await booked_brain(radicale, store)
    await say(brain, "actually I'm not interested anymore")
    assert brain.lead.status == "lost"
    assert ours(calendar) == []


async def test_a_retracted_booking_is_cancelled_at_the_end_of_the_call(radicale, store) -> None:
    access, calendar = radicale.new_calendar()
    brain = new_brain(meetings_for(access, store))
    await to_offer(brain)
    await say(brain, "the first one")
    [_ async for _ in brain.respond(CallerTurn("yes", 0.95))]
    assert len(ours(calendar)) == 1
    brain.retract()  # the caller talked on; the session merges the turns and never says "booked"
    await brain.aclose()
    assert ours(calendar) == []


# -- a calendar that is down ----------------------------------------------------------------------


async def test_a_calendar_that_does_not_answer_costs_one_timeout_and_the_call_goes_on(store, capsys) -> None:
    from telemetry import logs

    logs.configure()
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/realtor/work/"
        meetings = meetings_for(CalendarAccess(url, "realtor", "x"), store, timeout_s=0.3)
        brain = new_brain(meetings)
        started = trio.current_time()
        windows = await to_offer(brain)
        assert windows == schedule.offer_windows(NOW, 2)  # today's rules
        await say(brain, "the first one")
        reply = await say(brain, "yes")
        took = trio.current_time() - started
    assert "Booked" in reply and brain.lead.status == "meeting_booked"
    assert took < 1.5, took  # one busy fetch timed out; the booking did not wait again
    meeting = await meetings.get(brain.uid)
    assert meeting is not None and meeting.href is None  # kept in our database
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"CALENDAR"' in x]
    assert lines and lines[0]["state"] == "down" and "0.3s" in lines[0]["error"]


# -- the .ics link ------------------------------------------------------------------------------


async def test_the_signed_ics_link_serves_the_meeting(radicale, store) -> None:
    from quart_trio import QuartTrio

    from server.meeting_links import meetings_bp

    brain, calendar = await booked_brain(radicale, store)
    app = QuartTrio(__name__)
    app.register_blueprint(meetings_bp)
    app.wiring = SimpleNamespace(meetings=brain.meetings)
    link = brain.meetings.ics_url(brain.uid, brain.lead.meeting_at)
    path = link.removeprefix("https://agent.example")
    client = app.test_client()
    response = await client.get(path)
    assert response.status_code == 200 and response.content_type.startswith("text/calendar")
    body = (await response.get_data()).decode()
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert event["dtstart"].dt == brain.lead.meeting_at and str(event["uid"]) == brain.uid
    assert CALLER not in body  # the lead's own file: no phone, no dashboard link
    assert (await client.get(path.replace("sig=", "sig=x"))).status_code == 404
    assert (await client.get(f"/meetings/{brain.uid}.ics")).status_code == 404
    await brain.meetings.cancel(brain.uid)
    assert (await client.get(path)).status_code == 410


async def test_migration_7_makes_the_meetings_table(store) -> None:
    with store.engine.connect() as conn:
        assert "meetings" in sa.inspect(conn).get_table_names()
        assert 7 in set(conn.execute(sa.select(schema.schema_version.c.version)).scalars())


# -- by the lead's phone (the WhatsApp flow's entry points) ------------------------------------------


async def test_a_lead_reschedules_and_cancels_by_phone(radicale, store) -> None:
    from leads import lead_meetings

    brain, calendar = await booked_brain(radicale, store)
    booked_at = brain.lead.meeting_at
    with store.engine.begin() as conn:  # the lead's row, as the call's session wrote it
        conn.execute(schema.leads.insert().values(
            phone=CALLER, name="Dana", area="Tel Aviv", status="meeting_booked", meeting_at=booked_at,
            created_at=NOW, updated_at=NOW))
    assert (await lead_meetings.current(brain.meetings, CALLER)).starts_at == booked_at
    windows = await lead_meetings.next_windows(brain.meetings, CALLER, NOW)
    assert len(windows) == 2 and booked_at not in windows
    foreign_event(calendar, windows[0], windows[0] + dt.timedelta(hours=1))  # taken since the offer
    assert await lead_meetings.reschedule(brain.meetings, CALLER, windows[0]) == "taken"
    assert await lead_meetings.reschedule(brain.meetings, CALLER, windows[1]) == "booked"
    [event] = ours(calendar)
    assert event["dtstart"].dt == windows[1]

    def lead_row() -> dict:
        with store.engine.connect() as conn:
            return dict(conn.execute(sa.select(schema.leads)).mappings().one())

    assert schema.utc(lead_row()["meeting_at"]) == windows[1] and lead_row()["status"] == "meeting_booked"
    assert await lead_meetings.cancel(brain.meetings, CALLER) is True
    assert ours(calendar) == [] and lead_row()["meeting_at"] is None and lead_row()["status"] == "qualified"
    assert await lead_meetings.cancel(brain.meetings, CALLER) is False
    assert await lead_meetings.reschedule(brain.meetings, CALLER, windows[1]) is None


async def test_a_weekly_event_blocks_every_week(radicale, store) -> None:
    access, calendar = radicale.new_calendar()
    first = schedule.offer_windows(NOW, 2)[0]
    foreign_event(calendar, first, first + dt.timedelta(hours=1), rrule="FREQ=WEEKLY;COUNT=10")
    meetings = meetings_for(access, store)
    busy = await meetings.busy(meetings.realtors.all[0])
    for week in range(3):  # expanded: each occurrence, in Israel time across the DST change
        at = first + dt.timedelta(weeks=week)
        assert not schedule.is_free(at, busy, RULES), at
    assert first not in schedule.offer_windows(NOW, 2, busy=busy, rules=RULES)


# -- from the call: move it, cancel it --------------------------------------------------------------


async def test_the_caller_moves_the_meeting_and_the_event_follows(radicale, store) -> None:
    brain, calendar = await booked_brain(radicale, store)
    first = brain.lead.meeting_at
    [before] = ours(calendar)
    reply = await say(brain, "can we move the meeting to Friday?")
    assert reply.startswith("So Friday at") and reply.endswith("shall I book it?"), reply
    assert brain.lead.meeting_at == first  # the booked time stands until another is confirmed
    booked = await say(brain, "yes")
    assert "Booked for Friday" in booked
    moved = brain.lead.meeting_at
    assert moved != first and moved.weekday() == 4
    [after] = ours(calendar)
    assert str(after["uid"]) == str(before["uid"]) == brain.uid  # the same event, moved
    assert after["dtstart"].dt == moved and int(after["sequence"]) == 1
    assert (await brain.meetings.get(brain.uid)).starts_at == moved


async def test_the_caller_cancels_the_meeting_and_the_event_goes(radicale, store) -> None:
    brain, calendar = await booked_brain(radicale, store)
    assert await say(brain, "I need to cancel the meeting") == "I've cancelled the meeting. Anything else?"
    assert brain.lead.meeting_at is None and brain.lead.status == "qualified"
    assert ours(calendar) == []
    assert "Add to your calendar" not in brain.summary()


# -- two bookings racing for one slot -----------------------------------------------------------------


async def test_two_calls_racing_for_one_slot_never_double_book(radicale, store) -> None:
    """One process: its bookings of a realtor take turns, so exactly one wins. Two processes
    (two Meetings on one calendar): the check after the PUT means at most one keeps the slot."""
    access, calendar = radicale.new_calendar()
    one = meetings_for(access, store)
    two = meetings_for(access, store)
    day = dt.datetime(2027, 4, 4, 10, tzinfo=TZ)  # a Sunday
    for round_no, pair in enumerate([(one, one), (one, two), (one, two), (two, one), (one, two)]):
        at = day + dt.timedelta(days=round_no)
        outcomes: list[str] = []

        async def book(meetings: Meetings) -> None:
            outcomes.append(await meetings.book(Booking(new_uid(), "dana", CALLER, at, name="Dana")))

        async with trio.open_nursery() as nursery:
            for meetings in pair:
                nursery.start_soon(book, meetings)
        ours_then = [c for c in ours(calendar) if c["dtstart"].dt == at]
        assert outcomes.count("booked") <= 1 and len(ours_then) == outcomes.count("booked"), (round_no, outcomes)
        if pair[0] is pair[1]:
            assert sorted(outcomes) == ["booked", "taken"]
