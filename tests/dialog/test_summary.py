from __future__ import annotations

import datetime as dt

import pytest

from dialog import summary
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
