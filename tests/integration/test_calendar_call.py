"""A whole call books into the realtor's real calendar: `agentlocator serve` as deployed (rule
brain, Google fakes for speech, an SQLite file) with CALENDAR_URL naming a calendar in a real
CalDAV server (Radicale). The realtor is already busy at the window the office-hour rules
would offer first; the caller takes the first window they hear and says yes. We then look at
the calendar, the WhatsApp summary queued for the lead, and the .ics link it carries."""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

import icalendar
import sqlalchemy as sa
import trio

from dialog import schedule
from leads.ics import MeetingEvent, to_ics
from server.caller import script as sc
from server.caller.call import CallIds
from server.caller.client import place_call, prepare

from .harness import ahttp, server_process

sys.path.append(str(Path(__file__).resolve().parents[1] / "speech"))  # the Google fakes
sys.path.append(str(Path(__file__).resolve().parents[1] / "meetings"))  # the Radicale server
from fake_google import FakeGoogle, FakeSpeech, FakeTts  # noqa: E402
from radicale_server import radicale_server  # noqa: E402

CALLER_LINES = [
    "אני מחפש בתל אביב", "דירת 4 חדרים", "מיליון וחצי", "תוך שלושה חודשים", "קוראים לי דנה",
    "כן, נכון", "הראשון", "כן", "לא, תודה",
]
CALL_SID = "CA" + "ca1e4d" + "0" * 26


def _script() -> str:
    lines = ["wait_agent 500 15"]
    for text in CALLER_LINES:
        lines += [f"say he-IL {text}", "wait_agent 500 15"]
    return "\n".join(lines + ["silence 3000", "hangup"]) + "\n"


async def test_a_call_books_into_the_realtors_calendar_around_what_is_there(tmp_path: Path) -> None:
    steps = prepare(sc.parse_script(_script()))
    speech = FakeSpeech(script=CALLER_LINES)
    tts = FakeTts(ms_per_char=12)
    db = tmp_path / "agent.db"
    with radicale_server() as radicale, FakeGoogle(speech, tts) as google:
        access, calendar = radicale.new_calendar()
        # The realtor is busy at the first window the rules alone would offer.
        now = dt.datetime.now(schedule.TZ)
        first = schedule.offer_windows(now, 2)[0]
        calendar.save_event(to_ics(MeetingEvent("dentist@elsewhere", first, first + dt.timedelta(hours=1),
                                                name="dentist"), now))
        env = {
            "AGENT_LANGUAGE": "he-IL", "BRAIN": "rules",
            "GOOGLE_SPEECH_ENDPOINT": google.endpoint, "GOOGLE_TTS_ENDPOINT": google.endpoint,
            "DATABASE_URL": f"sqlite:///{db}", "PUBLIC_BASE_URL": "https://agent.example",
            "CALENDAR_URL": access.url, "CALENDAR_USER": access.user, "CALENDAR_PASSWORD": access.password,
            "AGENTLOCATOR_TEST_WIRING": "", "ASR_PROVIDER": "", "TTS_PROVIDER": "", "WHISPER_MODEL": "",
            "DASHBOARD_TOKEN": "", "REALTORS": "", "REALTORS_FILE": "",
        }
        log_path = tmp_path / "server.log"
        async with server_process(log_path, env) as (port, _):
            with trio.fail_after(90):
                outcome = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", steps,
                                           ids=CallIds(call_sid=CALL_SID), subprotocols=["audio.twilio.com"])
            with trio.fail_after(10):
                while True:
                    status, _, body = await ahttp("GET", port, "/api/leads")
                    leads = json.loads(body)
                    if leads and leads[0].get("status") == "meeting_booked":
                        break
                    await trio.sleep(0.1)
            engine = sa.create_engine(f"sqlite:///{db}")
            with trio.fail_after(10):  # the summary is queued as the call ends
                while True:
                    with engine.connect() as conn:
                        summary = conn.execute(sa.text("SELECT body FROM outbox WHERE channel='whatsapp'")).scalar()
                    if summary:
                        break
                    await trio.sleep(0.1)
            link = re.search(r"להוספה ליומן: (\S+)", summary)
            assert link, summary
            path = link.group(1).removeprefix("https://agent.example")
            ics_status, ics_headers, ics_body = await ahttp("GET", port, path)
            forged_status, _, _ = await ahttp("GET", port, path[:-3] + "AAA")
        events = list(calendar.events())
    log = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert outcome.call.errors == [] and outcome.call.close_code == 1000

    meeting_at = dt.datetime.fromisoformat(leads[0]["meeting_at"])
    assert meeting_at != first  # the busy window was not offered
    ours = [c for e in events for c in e.icalendar_instance.walk("VEVENT") if str(c["uid"]) != "dentist@elsewhere"]
    assert len(ours) == 1
    event = ours[0]
    assert event["dtstart"].dt == meeting_at and str(event["dtstart"].params["TZID"]) == "Asia/Jerusalem"
    text = str(event["description"])
    assert "דנה" in text and "תל אביב" in text and "1,500,000" in text and f"/dashboard/calls/{CALL_SID}" in text

    assert ics_status == 200 and forged_status == 404
    served = icalendar.Calendar.from_ical(ics_body).walk("VEVENT")[0]
    assert served["dtstart"].dt == meeting_at and str(served["uid"]) == str(event["uid"])

    startup = next(line for line in log if line["event"] == "STARTUP" and "notes" in line)
    assert any(n.startswith("calendar: CalDAV for realtor") for n in startup["notes"]), startup["notes"]
    booked = [line for line in log if line["event"] == "MEETING"]
    assert [(b["op"], b["outcome"]) for b in booked] == [("book", "booked")]
    assert "ERROR" not in [line["event"] for line in log]
