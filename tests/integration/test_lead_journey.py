"""A lead's whole journey on the real server process (`agentlocator serve`, production wiring:
rule brain, Google speech and TTS fakes, an SQLite file), with the realtor's calendar in a
real CalDAV server (Radicale) and a fake Twilio REST server for both ``calls.create`` and
WhatsApp's Messages:

web form -> intake -> the dialer calls within 2 s -> the lead (a simulated call placed into
our /twiml as ``outbound-api``) books a meeting -> the event is in the realtor's calendar ->
the WhatsApp summary goes out as the approved template (the lead never wrote to us) -> the
lead answers "אפשר להזיז למחר?" over Twilio's signed webhook -> new windows, free in the
calendar, as free text -> picks the first, says yes -> confirmed, with the add-to-calendar
link -> the same calendar event moved -> GET /api/leads/{phone} shows the call, the dial
job, the thread both ways and the meeting -> and so does the lead's page in the dashboard,
in headless Debian Chromium (Playwright; skipped, saying so, without chromium).

The clock is the real one (calling hours are opened all week for the test): the windows are
read back from what the server offered rather than written into the test.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
import shutil
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import icalendar
import pytest
import sqlalchemy as sa
import trio

from dialog import schedule
from leads.ics import MeetingEvent, to_ics

from .harness import ahttp, server_process
from .twilio_calls import PUBLIC, WAIT, FakeTwilioCalls, PreparedHangup, play, post_signed, say

sys.path.append(str(Path(__file__).resolve().parents[1] / "speech"))  # the Google fakes
sys.path.append(str(Path(__file__).resolve().parents[1] / "meetings"))  # the Radicale server
from fake_google import FakeGoogle, FakeSpeech, FakeTts  # noqa: E402
from radicale_server import radicale_server  # noqa: E402

LEAD = "+972501234567"
FORM = {"phone": "050-123-4567", "name": "דנה כהן", "area": "רמת גן", "property_type": "דירה", "rooms": "4",
        "budget_ils": "2,500,000", "deal": "buy", "timeframe": "תוך חצי שנה", "source": "web_form"}
WORDS = ["כן, בטח", "הראשון", "כן", "לא, תודה"]  # good time; the first window; yes; nothing else
TEMPLATE = "HX" + "c" * 32
DASH = {"Authorization": "Bearer dash-token-0123456789abcdef"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def lead_page(port: int) -> dict[str, Any]:
    """The lead's page as a person sees it (blocking: Playwright's sync API, in a thread):
    the timeline's items by kind, the thread's action badges, what the last message says."""
    from playwright.sync_api import expect, sync_playwright

    token = DASH["Authorization"].split()[1]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(locale="he-IL", timezone_id="Asia/Jerusalem")
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{port}/dashboard/leads/%2B{LEAD[1:]}?token={token}")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            items = page.locator("#lead-timeline > li")
            expect(items.locator(".bubble")).to_have_count(7, timeout=15000)
            kinds = [items.nth(i).get_attribute("data-kind") for i in range(items.count())]
            messages = page.locator("#lead-timeline > li[data-kind='message']")
            seen = {
                "kinds": kinds,
                "directions": [messages.nth(i).get_attribute("data-direction") for i in range(messages.count())],
                "badges": page.locator("#lead-timeline .badge[class*='action-']").all_inner_texts(),
                "last": messages.last.locator(".bubble").inner_text(),
                "status": page.locator("#lead-status").inner_text(),
                "call_link": page.locator("#lead-timeline > li[data-kind='call'] .head a").get_attribute("href"),
                "errors": errors,
            }
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "lead-journey.png"), full_page=True)
            return seen
        finally:
            browser.close()


def post_intake(port: int) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/leads/intake", data=json.dumps(FORM, ensure_ascii=False).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer intake-secret-token",
                 "Idempotency-Key": "journey-1"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - our own server
        return resp.status, json.loads(resp.read())


_n = 0


async def whatsapp(port: int, body: str) -> int:
    """The lead writes: Twilio's Messaging webhook, signed over the public URL."""
    global _n
    _n += 1
    form = {"MessageSid": f"SM{0xE2E000 + _n:032x}", "AccountSid": "AC" + "1" * 32, "From": f"whatsapp:{LEAD}",
            "To": "whatsapp:+14155238886", "Body": body, "NumMedia": "0", "ProfileName": "Dana"}
    return await trio.to_thread.run_sync(functools.partial(post_signed, port, f"{PUBLIC}/whatsapp_inbound", form))


async def until(predicate: Any, timeout_s: float) -> Any:
    with trio.fail_after(timeout_s):
        while True:
            found = await predicate()
            if found:
                return found
            await trio.sleep(0.05)


async def lead(port: int) -> dict[str, Any]:
    status, _, body = await ahttp("GET", port, f"/api/leads/{LEAD}", headers=DASH)
    assert status == 200, body
    return json.loads(body)


def events_of(calendar) -> dict[str, dt.datetime]:  # type: ignore[no-untyped-def]
    return {str(c["uid"]): c["dtstart"].dt for obj in calendar.events() for c in obj.icalendar_instance.walk("VEVENT")}


async def test_intake_call_meeting_whatsapp_reschedule_all_in_the_lead(tmp_path: Path) -> None:
    fake = FakeTwilioCalls()
    speech = FakeSpeech(script=WORDS)
    db = tmp_path / "agent.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    steps = [WAIT]
    for line in WORDS:
        steps += [say(900, line), WAIT]
    steps.append(PreparedHangup())
    try:
        with radicale_server() as radicale, FakeGoogle(speech, FakeTts(ms_per_char=8)) as google:
            access, calendar = radicale.new_calendar()
            # The realtor is busy at the first window the office-hour rules would offer.
            now = dt.datetime.now(schedule.TZ)
            dentist = schedule.offer_windows(now, 2)[0]
            calendar.save_event(to_ics(MeetingEvent("dentist@elsewhere", dentist, dentist + dt.timedelta(hours=1),
                                                    name="dentist"), now))
            env = {
                **fake.env(), "AGENT_LANGUAGE": "he-IL", "BRAIN": "rules",
                "GOOGLE_SPEECH_ENDPOINT": google.endpoint, "GOOGLE_TTS_ENDPOINT": google.endpoint,
                "DATABASE_URL": f"sqlite:///{db}", "STORE_JOURNAL_DIR": str(tmp_path / "journal"),
                "CALENDAR_URL": access.url, "CALENDAR_USER": access.user, "CALENDAR_PASSWORD": access.password,
                "INTAKE_TOKEN": "intake-secret-token", "DASHBOARD_TOKEN": DASH["Authorization"].split()[1],
                "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886", "TWILIO_WHATSAPP_TEMPLATE_SID": TEMPLATE,
                "AGENTLOCATOR_TEST_WIRING": "", "ASR_PROVIDER": "", "TTS_PROVIDER": "", "WHISPER_MODEL": "",
                "REALTORS": "", "REALTORS_FILE": "", "OPENAI_API_KEY": "",
            }
            async with server_process(tmp_path / "server.log", env) as (port, _):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(play, fake, port, lambda placed: steps)
                    posted = time.monotonic()
                    status, body = await trio.to_thread.run_sync(post_intake, port)
                    assert status == 201 and body["dial"]["status"] == "queued", body
                    await until(lambda: _now(bool(fake.placed)), 5)
                    create_s = fake.placed[0].received - posted

                    async def booked() -> dict[str, Any] | None:
                        detail = await lead(port)
                        done = detail["dial_jobs"] and detail["dial_jobs"][0]["state"] == "done"
                        return detail if done and detail["lead"]["status"] == "meeting_booked" else None

                    after_call = await until(booked, 60)
                    nursery.cancel_scope.cancel()
                placed = fake.placed[0]
                meeting_at = dt.datetime.fromisoformat(after_call["lead"]["meeting_at"])
                ours = {uid: at for uid, at in events_of(calendar).items() if uid != "dentist@elsewhere"}
                assert list(ours.values()) == [meeting_at] and meeting_at != dentist
                [uid] = ours

                # The summary: the approved template (outside the 24-hour window).
                await until(lambda: _now(len(fake.messages) >= 1), 20)
                summary = fake.messages[0]
                assert summary["To"] == f"whatsapp:{LEAD}" and summary["ContentSid"] == TEMPLATE
                variables = json.loads(summary["ContentVariables"])
                assert "Body" not in summary and variables["1"] == "דנה"
                assert f"להוספה ליומן: {PUBLIC}/meetings/{uid}.ics?" in variables["2"], variables

                # "Can we move it to tomorrow?" -> windows free in the calendar, as free text.
                assert await whatsapp(port, "אפשר להזיז למחר?") == 200
                await until(lambda: _now(len(fake.messages) >= 2), 20)
                offer = fake.messages[1]
                assert "ContentSid" not in offer and offer["Body"].startswith("אין בעיה. מתאים "), offer
                with engine.connect() as conn:
                    offered = conn.execute(sa.text("SELECT offered FROM whatsapp_threads WHERE phone=:p"),
                                           {"p": LEAD}).scalar()
                windows = [dt.datetime.fromisoformat(w) for w in json.loads(offered)]
                assert 2 <= len(windows) <= 3 and meeting_at not in windows and dentist not in windows
                assert await whatsapp(port, "הראשון") == 200
                await until(lambda: _now(len(fake.messages) >= 3), 20)
                assert fake.messages[2]["Body"].endswith("לקבוע?")
                assert await whatsapp(port, "כן") == 200
                await until(lambda: _now(len(fake.messages) >= 4), 20)
                confirmed = fake.messages[3]["Body"]
                assert confirmed.startswith("קבענו "), confirmed
                link = re.search(r"להוספה ליומן: (\S+)", confirmed)
                assert link and link.group(1).startswith(f"{PUBLIC}/meetings/{uid}.ics?"), confirmed
                ics_status, _, ics = await ahttp("GET", port, link.group(1).removeprefix(PUBLIC))
                detail = await lead(port)
                page = await trio.to_thread.run_sync(lead_page, port) if Path(CHROMIUM).exists() else None
                log = [json.loads(x) for x in (tmp_path / "server.log").read_text().splitlines() if x.startswith("{")]
            events = events_of(calendar)
    finally:
        fake.close()
        engine.dispose()

    assert create_s < 2.0, f"intake -> calls.create took {create_s:.3f} s"
    assert placed.params["To"] == LEAD and placed.outcome.call.errors == []
    # the same event, moved to the window the lead picked; the dentist untouched
    assert events == {"dentist@elsewhere": dentist, uid: windows[0]}
    assert ics_status == 200
    served = icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]
    assert served["dtstart"].dt == windows[0] and str(served["uid"]) == uid

    assert dt.datetime.fromisoformat(detail["lead"]["meeting_at"]) == windows[0]
    assert detail["lead"]["status"] == "meeting_booked" and detail["lead"]["source"] == "web_form"
    assert [c["call_sid"] for c in detail["calls"]] == [placed.sid]
    [job] = detail["dial_jobs"]
    assert (job["reason"], job["state"], job["outcome"], job["call_sid"]) == ("intake", "done", "completed", placed.sid)
    thread = detail["messages"]
    assert [(m["direction"], m.get("kind")) for m in thread] == [
        ("out", "followup"), ("in", None), ("out", "reply"), ("in", None), ("out", "reply"), ("in", None),
        ("out", "reply")]
    assert [m["sent_as"] for m in thread if m["direction"] == "out"] == ["template", "text", "text", "text"]
    assert [m["action"] for m in thread if m["direction"] == "in"] == ["offer", "choose", "book"]
    meeting = detail["meeting"]
    assert meeting["uid"] == uid and meeting["status"] == "booked" and meeting["in_calendar"]
    assert dt.datetime.fromisoformat(meeting["starts_at"]) == windows[0] and meeting["call_sid"] == placed.sid

    moves = [x for x in log if x["event"] == "MEETING"]
    assert [(x["op"], x["outcome"]) for x in moves] == [("book", "booked"), ("reschedule", "booked")], moves
    assert [x.get("calendar") for x in log if x["event"] == "WEBHOOK" and x.get("path") == "/whatsapp_inbound"] == [
        "free", None, "booked"]
    assert "ERROR" not in [x["event"] for x in log]

    if page is None:
        pytest.skip("the lead page in Chromium: Debian chromium not installed (scripts/install-system-deps.sh)")
    assert page["errors"] == []
    assert sorted(k for k in page["kinds"] if k != "message") == ["call", "dial", "dial_job", "intake", "meeting"], page
    assert page["kinds"].count("message") == 7
    assert page["directions"] == ["out", "in", "out", "in", "out", "in", "out"]
    assert page["badges"] == ["הוצעו מועדים", "בחר מועד", "נקבע"]
    assert page["last"].startswith("קבענו ") and "להוספה ליומן" in page["last"]
    assert page["status"] == "נקבעה פגישה" and page["call_link"] == f"/dashboard/calls/{placed.sid}"


async def _now(value: Any) -> Any:
    return value
