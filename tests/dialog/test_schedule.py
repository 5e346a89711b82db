from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from dialog import schedule
from dialog.schedule import TZ


def at(y, m, d, h=15, minute=0):
    return dt.datetime(y, m, d, h, minute, tzinfo=TZ)


def test_reads_naturally_in_hebrew_and_english():
    now = at(2026, 11, 24, 18)  # Tuesday evening
    windows = [at(2026, 11, 25, 10), at(2026, 11, 26, 16)]
    assert schedule.say_offer(windows, now, True) == "מחר בעשר או ביום חמישי בארבע"
    assert schedule.say_offer(windows, now, False) == "tomorrow at 10 am or Thursday at 4 pm"
    three = windows + [at(2026, 11, 29, 13)]
    assert schedule.say_offer(three, now, True) == "מחר בעשר, ביום חמישי בארבע או ביום ראשון באחת"
    assert schedule.say_window(at(2026, 12, 3, 11), now, True) == "ביום חמישי, 3 בדצמבר באחת עשרה"


def test_two_windows_on_different_days_mixing_morning_and_afternoon():
    now = at(2026, 11, 24, 18)
    w = schedule.offer_windows(now)
    assert w == [at(2026, 11, 25, 10), at(2026, 11, 26, 13)]
    w3 = schedule.offer_windows(now, 3)
    assert len({x.date() for x in w3}) == 3


def test_friday_is_morning_only_and_shabbat_is_closed():
    assert schedule.hours_on(dt.date(2026, 11, 27)) == schedule.SHORT_DAY_HOURS
    assert schedule.hours_on(dt.date(2026, 11, 28)) == ()
    now = at(2026, 11, 27, 8)  # Friday 08:00
    w = schedule.offer_windows(now)
    assert w[0] == at(2026, 11, 27, 11) and w[1].date() == dt.date(2026, 11, 29)  # then Sunday


@pytest.mark.parametrize("day", [dt.date(2026, 9, 13), dt.date(2026, 9, 21), dt.date(2026, 4, 2), dt.date(2026, 4, 22)])
def test_israeli_holidays_are_closed(day):
    assert schedule.is_holiday(day) and schedule.hours_on(day) == ()


def test_holiday_eve_is_a_short_day():
    assert schedule.hours_on(dt.date(2026, 4, 1)) == schedule.SHORT_DAY_HOURS  # Pesach eve (Wednesday)
    assert schedule.hours_on(dt.date(2026, 9, 20)) == schedule.SHORT_DAY_HOURS  # Yom Kippur eve (Sunday)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31)), st.integers(2, 3))
def test_windows_are_always_open_future_office_hours(naive, count):
    now = naive.replace(tzinfo=TZ)
    windows = schedule.offer_windows(now, count)
    assert len(windows) == count
    for w in windows:
        assert w >= now + schedule.MIN_NOTICE
        assert w.weekday() != 5 and not schedule.is_holiday(w.date())
        assert w.hour in schedule.hours_on(w.date())
    assert len({w.date() for w in windows}) == count


@pytest.mark.parametrize("text, index", [
    ("מחר בעשר", 0), ("הראשון", 0), ("ביום חמישי", 1), ("חמישי בארבע", 1), ("בארבע", 1), ("השני", 1),
    ("tomorrow works", 0), ("the second one", 1), ("Thursday", 1), ("לא משנה לי", 0), ("at four", 1),
])
def test_pick_an_offered_window(text, index):
    now = at(2026, 11, 24, 18)
    windows = [at(2026, 11, 25, 10), at(2026, 11, 26, 16)]
    assert schedule.pick(text, windows, now) == schedule.Pick("window", windows[index])


def test_pick_none_unknown_and_other_day():
    now = at(2026, 11, 24, 18)
    windows = [at(2026, 11, 25, 10), at(2026, 11, 26, 16)]
    assert schedule.pick("אף אחד לא מתאים", windows, now).kind == "none"
    assert schedule.pick("neither", windows, now).kind == "none"
    assert schedule.pick("כן", windows, now).kind == "unknown"
    assert schedule.pick("ביום ראשון", windows, now) == schedule.Pick("window", at(2026, 11, 29, 10))
    assert schedule.pick("בשבת", windows, now).kind == "none"  # no slot on Shabbat


def test_naive_now_is_rejected_by_the_brain():
    from dialog.rules import RuleDialog

    with pytest.raises(ValueError):
        RuleDialog("he-IL", "+972501234567", dt.datetime(2026, 1, 1, 10))
