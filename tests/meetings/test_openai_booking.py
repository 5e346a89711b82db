"""The OpenAI brain with the realtor's calendar: its windows come free from the calendar, its
tool-confirmed meeting is booked there, and a slot taken meanwhile gets the correction line
right after the model's own "booked" (its tool call arrives after its text)."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
import trio

from dialog import schedule
from dialog.base import CallerTurn
from dialog.openai_brain import OpenAIBrain, OpenAIConfig
from leads.ics import MeetingEvent, to_ics
from leads.meetings import Meetings, MeetingsConfig
from leads.realtors import Realtor, Realtors
from server.meeting_brain import CalendarBrain

sys.path.append(str(Path(__file__).resolve().parents[1] / "dialog"))
from fake_openai import FakeOpenAI, Script  # noqa: E402

TZ = schedule.TZ
NOW = dt.datetime(2027, 3, 24, 8, 0, tzinfo=TZ)
CALLER = "+972501234567"
RULES = schedule.MeetingRules(dt.timedelta(minutes=60), dt.timedelta(minutes=30))
SLOTS = {"area": "תל אביב", "property_type": "דירה", "rooms": 3, "budget_ils": 2000000,
         "timeframe": "תוך חודשיים", "name": "דנה", "phone_confirmed": True}


@pytest.fixture
async def fake_openai(nursery) -> FakeOpenAI:
    fake = FakeOpenAI()
    await nursery.start(fake.serve)
    return fake


async def say(brain, text: str) -> list[str]:
    with trio.fail_after(15):
        out = [s async for s in brain.respond(CallerTurn(text, 0.9))]
    brain.heard(" ".join(out), True)
    return out


async def test_openai_brain_windows_booking_and_conflict(fake_openai, radicale, store) -> None:
    access, calendar = radicale.new_calendar()
    plain = schedule.offer_windows(NOW, 3)
    calendar.save_event(to_ics(MeetingEvent("busy@elsewhere", plain[0], plain[0] + dt.timedelta(hours=1)), NOW))
    fake_openai.push(
        Script("תודה דנה. אפשר להיפגש?", tool_args=SLOTS),
        Script("אז בראשון, לקבוע?", tool_args={"meeting_window": 0}),
        Script("קבענו. אשלח סיכום בוואטסאפ, יש עוד שאלה?", tool_args={"meeting_confirmed": True}),
    )
    config = OpenAIConfig(api_key="sk-test", model="fake-model", base_url=fake_openai.base_url)
    meetings = Meetings(Realtors([Realtor("dana", frozenset(), access)]), store, MeetingsConfig(rules=RULES),
                        clock=lambda: NOW)
    brain = CalendarBrain(OpenAIBrain(config, "he-IL", CALLER, NOW), meetings, CALLER, "he-IL")
    await say(brain, "דירת 3 חדרים בתל אביב, 2 מיליון, תוך חודשיים, דנה, והמספר נכון")
    windows = list(brain.inner.windows)
    assert windows and plain[0] not in windows  # busy in the calendar: never offered
    await say(brain, "הראשון")
    # Someone takes that time before the caller's yes.
    calendar.save_event(to_ics(MeetingEvent("late@elsewhere", windows[0], windows[0] + dt.timedelta(hours=1)), NOW))
    out = await say(brain, "כן")
    assert out[0] == "קבענו." and "המועד הזה נתפס הרגע ביומן" in " ".join(out) and out[-1].endswith("?")
    assert brain.lead.meeting_at is None and brain.lead.status == "qualified"
    assert windows[0] not in brain.inner.windows
    assert [str(c["uid"]) for e in calendar.events() for c in e.icalendar_instance.walk("VEVENT")
            if str(c["uid"]).endswith("@agentlocator")] == []
    await brain.aclose()
