"""Pure parts of the calendar: free windows with busy intervals and buffers, realtors'
configuration and who gets a lead, the meeting settings; and the wiring that puts it all in
every call (plus one Radicale test: a lead lands in the calendar of its area's realtor)."""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from dialog import schedule
from dialog.base import CallerTurn
from dialog.rules import RuleBrain
from leads.meetings import Meetings, MeetingsConfig
from leads.realtors import CalendarAccess, Realtor, Realtors, area_key, load_realtors
from native.config import ConfigError

TZ = schedule.TZ
NOW = dt.datetime(2027, 3, 24, 8, 0, tzinfo=TZ)
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
RULES = schedule.MeetingRules(60 * M, 30 * M)


# -- free windows ----------------------------------------------------------------------------------


def test_a_window_needs_its_buffer_on_both_sides() -> None:
    at = dt.datetime(2027, 3, 24, 13, tzinfo=TZ)
    assert schedule.is_free(at, [], RULES)
    assert schedule.is_free(at, [(at - 2 * H, at - 30 * M)], RULES)  # ends exactly where the buffer starts
    assert not schedule.is_free(at, [(at - 2 * H, at - 29 * M)], RULES)
    assert schedule.is_free(at, [(at + 90 * M, at + 3 * H)], RULES)  # starts where the buffer after ends
    assert not schedule.is_free(at, [(at + 89 * M, at + 3 * H)], RULES)
    assert not schedule.is_free(at, [(at - 5 * H, at + 5 * H)], RULES)
    no_buffer = schedule.MeetingRules(60 * M, 0 * M)
    assert schedule.is_free(at, [(at - H, at), (at + H, at + 2 * H)], no_buffer)


def test_busy_days_push_the_offer_on_and_never_onto_shabbat() -> None:
    busy = [(dt.datetime(2027, 3, d, tzinfo=TZ), dt.datetime(2027, 3, d + 1, tzinfo=TZ)) for d in (24, 25)]
    windows = schedule.offer_windows(NOW, 2, busy=busy, rules=RULES)
    assert windows and all(w.date() >= dt.date(2027, 3, 26) for w in windows)
    assert all(w.weekday() != 5 and schedule.hours_on(w.date()) for w in windows)  # Friday short day, not Saturday
    everything = [(NOW, NOW + dt.timedelta(days=60))]
    assert schedule.offer_windows(NOW, 2, busy=everything, rules=RULES) == []


def test_a_finer_grid_of_hours_offers_the_free_hour_next_to_a_busy_one() -> None:
    grid = schedule.MeetingRules(60 * M, 0 * M, weekday_hours=(10, 11, 12, 13, 14, 15, 16), short_day_hours=(9, 10))
    thursday = dt.datetime(2027, 3, 25, 10, tzinfo=TZ)
    busy = [(dt.datetime(2027, 3, 24, 0, tzinfo=TZ), dt.datetime(2027, 3, 25, 0, tzinfo=TZ)), (thursday, thursday + H)]
    windows = schedule.offer_windows(NOW, 2, busy=busy, rules=grid)
    assert windows[0] == thursday + H  # 11:00, right after the busy hour (no buffer)
    assert all(w.hour in grid.weekday_hours + grid.short_day_hours for w in windows)
    assert schedule.hours_on(dt.date(2027, 3, 26), grid) == (9, 10)  # Friday


def test_a_named_day_outside_the_offer_skips_its_busy_slots() -> None:
    windows = schedule.offer_windows(NOW, 2)
    sunday = dt.datetime(2027, 3, 28, 10, tzinfo=TZ)
    busy = [(sunday, sunday + H)]
    got = schedule.pick("sunday", windows, NOW, lambda at: schedule.is_free(at, busy, RULES))
    assert got.kind == "window" and got.at is not None and got.at.date() == sunday.date() and got.at != sunday


async def test_the_rule_dialog_offers_only_free_windows_and_recovers_from_a_taken_one() -> None:
    brain = RuleBrain("en-US", "+972501234567", NOW)
    plain = schedule.offer_windows(NOW, 2)
    brain.set_calendar(lambda: [(plain[0], plain[0] + H)], RULES)
    brain.heard(brain.opening(), True)
    for text in ("a 4 room apartment in Tel Aviv", "two million", "within a year", "my name is Dana", "yes"):
        reply = " ".join([s async for s in brain.respond(CallerTurn(text, 0.95))])
        brain.heard(reply, True)
    offered = list(brain.dialog.windows)
    assert plain[0] not in offered
    [s async for s in brain.respond(CallerTurn("the first one", 0.95))]
    [s async for s in brain.respond(CallerTurn("yes", 0.95))]
    assert brain.lead.meeting_at == offered[0]
    said = brain.slot_taken(offered[0])
    assert said.startswith("Sorry, that time was just taken") and said.count("?") == 1
    assert brain.lead.meeting_at is None and brain.lead.status == "qualified"
    assert offered[0] not in brain.dialog.windows and brain.dialog.phase == "offer"
    # "what?" repeats the new offer, not the old one
    assert brain.dialog.last_question() in said


# -- realtors ------------------------------------------------------------------------------------------


def realtors(*specs: tuple[str, tuple[str, ...]]) -> Realtors:
    return Realtors([Realtor(name, frozenset(area_key(a) for a in areas)) for name, areas in specs])


def test_a_lead_goes_to_the_realtor_of_its_area_round_robin_among_equals() -> None:
    team = realtors(("avi", ("תל אביב", "רמת גן")), ("bella", ("תל-אביב",)), ("carmel", ("חיפה",)), ("dor", ()))
    assert [team.pick("תל אביב").name for _ in range(4)] == ["avi", "bella", "avi", "bella"]
    assert [team.pick("רמת גן").name for _ in range(2)] == ["avi", "avi"]
    assert team.pick("חיפה").name == "carmel"
    assert team.pick("אילת").name == "dor"  # no one serves it: the catch-all realtor
    assert team.pick(None).name == "dor"
    nobody_catches = realtors(("avi", ("תל אביב",)), ("carmel", ("חיפה",)))
    assert [nobody_catches.pick("אילת").name for _ in range(2)] == ["avi", "carmel"]  # then everyone, in turn
    assert Realtors([]).pick("חיפה") is None


async def test_round_robin_holds_across_server_processes(store) -> None:
    """Two processes (two Meetings on one database): each learns the other's bookings."""
    from leads.meetings import Booking, new_uid

    def team() -> Meetings:
        people = realtors(("avi", ("תל אביב",)), ("bella", ("תל אביב",)))
        return Meetings(people, store, MeetingsConfig(rules=RULES), clock=lambda: NOW)

    one, two = team(), team()
    first = one.pick("תל אביב")
    assert first.name == "avi"
    await one.book(Booking(new_uid(), first.name, "+972501111111", NOW + dt.timedelta(days=1)))
    await two.learn_assignments()  # as its refresh task does
    assert two.pick("תל אביב").name == "bella"  # not avi again
    assert one.pick("תל אביב").name == "bella"  # and one goes on in turn too


def test_realtors_from_json_env_file_and_calendar_url(tmp_path: Path) -> None:
    spec = [
        {"name": "avi", "areas": ["Tel Aviv"], "calendar_url": "https://dav.example/avi/", "user": "avi",
         "password_env": "AVI_PASS"},
        {"name": "dor", "areas": ["*"]},
    ]
    team = load_realtors({"REALTORS": json.dumps(spec), "AVI_PASS": "pw"})
    avi, dor = team.all
    assert avi.calendar == CalendarAccess("https://dav.example/avi/", "avi", "pw") and "pw" not in repr(avi)
    assert dor.calendar is None and dor.catch_all
    assert team.pick("tel-aviv").name == "avi"
    path = tmp_path / "realtors.json"
    path.write_text(json.dumps(spec[1:]), encoding="utf-8")
    assert [r.name for r in load_realtors({"REALTORS_FILE": str(path)}).all] == ["dor"]
    one = load_realtors({"CALENDAR_URL": "https://dav.example/me/", "CALENDAR_USER": "me", "CALENDAR_PASSWORD": "x"})
    assert [(r.name, r.catch_all, r.calendar.user) for r in one.all] == [("realtor", True, "me")]
    assert not load_realtors({})


@pytest.mark.parametrize("env, says", [
    ({"REALTORS": "[{"}, "REALTORS: not JSON"),
    ({"REALTORS": "[]"}, "non-empty JSON list"),
    ({"REALTORS": '[{"areas": []}]'}, "REALTORS[0]: 'name' is required"),
    ({"REALTORS": '[{"name": "a", "areas": "חיפה"}]'}, "'areas' must be a list"),
    ({"REALTORS": '[{"name": "a", "calendar_url": "ftp://x"}]'}, "is not an http(s) URL"),
    ({"REALTORS": '[{"name": "a", "calendar_url": "https://x/", "password_env": "NOPE"}]'}, "'NOPE' is not set"),
    ({"REALTORS": '[{"name": "a"}, {"name": "a"}]'}, "names must be unique"),
    ({"REALTORS": '[{"name": "a"}]', "REALTORS_FILE": "/x"}, "not both"),
    ({"REALTORS_FILE": "/nonexistent/realtors.json"}, "REALTORS_FILE=/nonexistent/realtors.json"),
    ({"CALENDAR_URL": "caldav.example.com"}, "CALENDAR_URL"),
])
def test_a_bad_realtors_config_is_a_startup_error_naming_the_field(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load_realtors(env)
    assert says in str(err.value), str(err.value)


def test_meeting_settings_from_env() -> None:
    config = MeetingsConfig.from_env({"MEETING_MINUTES": "45", "MEETING_BUFFER_MINUTES": "0",
                                      "CALENDAR_TIMEOUT_SECONDS": "1.5"}, "https://a.example/", b"k")
    assert config.rules == schedule.MeetingRules(45 * M, 0 * M)
    assert config.timeout_s == 1.5 and config.public_base_url == "https://a.example"
    hours = MeetingsConfig.from_env({"MEETING_HOURS": "16, 9,10,11", "MEETING_SHORT_DAY_HOURS": "9"}, None, b"k").rules
    assert (hours.weekday_hours, hours.short_day_hours) == ((9, 10, 11, 16), (9,))
    for bad in ({"MEETING_MINUTES": "lots"}, {"MEETING_MINUTES": "5"}, {"CALENDAR_TIMEOUT_SECONDS": "0"},
                {"MEETING_HOURS": "9-17"}, {"MEETING_HOURS": "3"}, {"MEETING_SHORT_DAY_HOURS": ","}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            MeetingsConfig.from_env(bad, None, b"k")


# -- the wiring --------------------------------------------------------------------------------------


def test_every_call_gets_the_calendar_brain_and_startup_says_which_calendars(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'w.db'}"
    from server.meeting_brain import CalendarBrain
    from server.meeting_links import meetings_bp
    from server.settings import Settings
    from server.wiring import build_meetings, build_recorder

    for env, note in (
        ({}, "calendar: none (CALENDAR_URL / REALTORS unset)"),
        ({"CALENDAR_URL": "https://dav.example/me/"}, "calendar: CalDAV for realtor"),
    ):
        settings = Settings.from_env({"DATABASE_URL": sqlite_url, **env})
        notes: list[str] = []
        recorder, background, blueprints = build_recorder(settings, notes)
        try:
            meetings, new_brain = build_meetings(settings, recorder, RuleBrain, notes, background, blueprints)
            brain = new_brain("he-IL", "+972501234567", NOW)
            assert isinstance(brain, CalendarBrain) and brain.name == "rules" and brain.meetings is meetings
            assert any(n.startswith(note) for n in notes), notes
            assert any("PUBLIC_BASE_URL unset" in n for n in notes)
            assert meetings_bp in blueprints
            assert (meetings.refresh_all in background) == bool(env)
        finally:
            logger = logging.getLogger("agentlocator")
            for tap in [h for h in logger.handlers if getattr(h, "recorder", None) is recorder]:
                logger.removeHandler(tap)  # build_recorder feeds the timeline from the log
            recorder.store.close()


# -- several realtors, real calendars ----------------------------------------------------------------


async def test_the_meeting_lands_in_the_calendar_of_the_areas_realtor(radicale, store) -> None:
    from server.meeting_brain import CalendarBrain

    (tlv_access, tlv_cal), (haifa_access, haifa_cal) = radicale.new_calendar(), radicale.new_calendar()
    team = Realtors([Realtor("tlv", frozenset({area_key("Tel Aviv")}), tlv_access),
                     Realtor("haifa", frozenset({area_key("Haifa")}), haifa_access)])
    meetings = Meetings(team, store, MeetingsConfig(rules=RULES), clock=lambda: NOW)
    brain = CalendarBrain(RuleBrain("en-US", "+972501234567", NOW), meetings, "+972501234567", "en-US")
    brain.heard(brain.opening(), True)
    for text in ("a 4 room apartment in Tel Aviv", "two million", "within a year", "my name is Dana", "yes",
                 "the first one", "yes"):
        reply = " ".join([s async for s in brain.respond(CallerTurn(text, 0.95))])
        brain.heard(reply, True)
    assert brain.lead.status == "meeting_booked" and brain.realtor.name == "tlv"
    assert len(list(tlv_cal.events())) == 1 and list(haifa_cal.events()) == []
    assert (await meetings.active_for("+972501234567")).realtor == "tlv"


@pytest.mark.parametrize("text, cancels, moves", [
    ("I need to cancel the meeting", True, False),
    ("please cancel my appointment", True, False),
    ("אני צריכה לבטל את הפגישה", True, False),
    ("תבטלי את הפגישה בבקשה", True, False),
    ("can we move the meeting to Thursday?", False, True),
    ("I'd like to reschedule", False, True),
    ("can we do another day?", False, True),
    ("אפשר להזיז את הפגישה ליום חמישי?", False, True),
    ("אפשר לשנות את המועד?", False, True),
    ("יש לך יום אחר?", False, True),
    ("no, that's all, thanks", False, False),
    ("לא, תודה", False, False),
    ("I want another apartment too", False, False),
    ("מה עם הפגישה?", False, False),
])
def test_what_counts_as_cancelling_or_moving_the_meeting(text: str, cancels: bool, moves: bool) -> None:
    from dialog import extract

    assert (extract.cancels_meeting(text), extract.moves_meeting(text)) == (cancels, moves)
