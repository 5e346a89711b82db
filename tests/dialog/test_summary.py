from __future__ import annotations

import datetime as dt

import pytest

from dialog import extract, summary
from dialog.base import LeadState, Slots
from dialog.schedule import TZ


@pytest.mark.parametrize("amount, he, en", [
    (1_000_000, "מיליון", "1 million shekels"), (1_500_000, "מיליון וחצי", "1.5 million shekels"),
    (2_000_000, "2 מיליון", "2 million shekels"), (2_500_000, "שניים וחצי מיליון", "2.5 million shekels"),
    (1_800_000, "1.8 מיליון", "1.8 million shekels"), (900_000, "900 אלף שקל", "900 thousand shekels"),
])
def test_budget_is_said_the_way_people_say_it(amount, he, en):
    assert summary.say_budget(amount, True) == he
    assert summary.say_budget(amount, False) == en


def full_lead() -> LeadState:
    return LeadState(
        Slots(area="רמת גן", property_type="דירה", rooms=4, budget_ils=2_000_000, timeframe="תוך חצי שנה",
              name="מיכל לוי", phone="+972501234567", phone_confirmed=True),
        status="meeting_booked", meeting_at=dt.datetime(2026, 11, 26, 16, 0, tzinfo=TZ),
    )


def test_whatsapp_summary_in_hebrew():
    text = summary.whatsapp(full_lead(), True)
    assert text.splitlines() == [
        "שלום מיכל לוי, תודה על השיחה עם AgentLocator.",
        "מחפשים: דירת 4 חדרים ברמת גן.",
        "תקציב: עד 2,000,000 ₪.",
        "מועד: תוך חצי שנה.",
        "פגישה: יום חמישי, 26.11.2026 בשעה 16:00.",
        "טלפון לחזרה: 050-123-4567.",
    ]


def test_whatsapp_summary_after_a_dropped_call_and_a_lost_lead():
    partial = LeadState(Slots(area="חיפה", phone="+972501234567"))
    text = summary.whatsapp(partial, True)
    assert "בחיפה" in text and "נחזור אליך" in text and "פגישה:" not in text and "תקציב" not in text
    lost = LeadState(Slots(), status="lost")
    assert "תודה על הזמן" in summary.whatsapp(lost, True)
    assert "Meeting: Thursday, 26.11.2026 at 16:00" in summary.whatsapp(full_lead(), False)


@pytest.mark.parametrize("amount, he, en", [
    (2_000_000, "שני מיליון", "two million"),
    (1_500_000, "מיליון וחצי", "one and a half million"),
    (2_500_000, "שניים וחצי מיליון", "two and a half million"),
    (1_800_000, "מיליון ושמונה מאות אלף", "one point eight million"),
    (800_000, "שמונה מאות אלף", "eight hundred thousand"),
    (950_000, "תשע מאות וחמישים אלף", "nine hundred fifty thousand"),
    (1_234_000, None, None),
])
def test_budget_in_words(amount, he, en):
    assert summary.say_budget_words(amount, True) == he
    assert summary.say_budget_words(amount, False) == en


def test_budget_words_read_back_as_the_same_amount():
    for amount in range(50_000, 20_000_001, 50_000):
        for hebrew in (True, False):
            said = summary.say_budget_words(amount, hebrew)
            if said is not None:
                assert not any(ch.isdigit() for ch in said)
                assert extract.budget_in(said) == amount, said


def test_an_odd_budget_is_echoed_exactly():  # "1.23 million" for 1,234,000 read as an invented price
    for amount in (1_234_000, 2_345_678, 1_050_000):
        for hebrew in (True, False):
            assert extract.budget_in(summary.say_budget(amount, hebrew)) == amount
