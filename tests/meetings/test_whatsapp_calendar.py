"""WhatsApp and the realtor's calendar: the Twilio-signed webhook on the real blueprint, the
real store (SQLite), a real CalDAV server (Radicale, conftest.py). The windows offered over
WhatsApp are free in the calendar, a yes moves the event (same UID), a slot taken meanwhile
gets the next free windows, a cancel deletes the event, and a calendar that does not answer
leaves today's behaviour (the meeting kept in our database) with a CALENDAR line."""
from __future__ import annotations

import datetime as dt
import json
import socket
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
import trio
from quart_trio import QuartTrio

from dialog import schedule
from dialog.base import LeadState, Slots
from leads import schema
from leads.base import CallInfo, CallMetrics
from leads.ics import MeetingEvent, to_ics
from leads.meetings import Booking, Meetings, MeetingsConfig, new_uid
from leads.realtors import CalendarAccess, Realtor, Realtors
from leads.store import SqlRecorder, Store
from server.security import SignatureChecker
from server.whatsapp import BRAIN_KEY, TextBrain, whatsapp_bp

TZ = schedule.TZ
AUTH = "authtok"
PHONE = "+972501234567"
# Tuesday 1 December 2026, 09:00 in Israel.
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ)
TODAY_16 = dt.datetime(2026, 12, 1, 16, 0, tzinfo=TZ)
TOMORROW = [dt.datetime(2026, 12, 2, h, 0, tzinfo=TZ) for h in (10, 13, 16)]
URL = "http://localhost/whatsapp_inbound"
_n = 0


def meetings_for(access: CalendarAccess | None, store: Store, timeout_s: float = 5.0) -> Meetings:
    config = MeetingsConfig(timeout_s=timeout_s, public_base_url="https://agent.example", link_key=b"k" * 32)
    return Meetings(Realtors([Realtor("dana", frozenset(), access)]), store, config, clock=lambda: T0)


def app_for(store: Store, meetings: Meetings, monkeypatch: pytest.MonkeyPatch) -> QuartTrio:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH)
    app = QuartTrio(__name__)
    app.config["STORE"] = store
    app.register_blueprint(whatsapp_bp)
    app.extensions[BRAIN_KEY] = TextBrain(clock=lambda: T0)
    app.wiring = SimpleNamespace(meetings=meetings)
    return app


async def booked(store: Store, meetings: Meetings) -> str:
    """A call booked today 16:00: the lead's row and the event in the calendar."""
    rec = SqlRecorder(store, lead_webhook=False)
    sid = "CA" + "1" * 32
    await rec.call_started(CallInfo(sid, "MZ" + "1" * 32, PHONE, "+97233001122", T0 - dt.timedelta(hours=1)))
    lead = LeadState(Slots(area="רמת גן", name="דנה לוי"), status="meeting_booked", meeting_at=TODAY_16)
    await rec.call_ended(sid, T0 - dt.timedelta(minutes=50), "agent_hangup", "meeting_booked", CallMetrics(turns=6),
                         PHONE, lead, "תודה דנה!")
    uid = new_uid()
    outcome = await meetings.book(Booking(uid=uid, realtor="dana", phone=PHONE, starts_at=TODAY_16, call_sid=sid,
                                          name="דנה לוי", area="רמת גן"))
    assert outcome in ("booked", "offline")
    return uid


async def say(client, body: str) -> str:  # type: ignore[no-untyped-def]
    """One signed inbound message; the reply it queued in the outbox."""
    global _n
    _n += 1
    params = {"MessageSid": f"SM{_n:032x}", "AccountSid": "AC" + "0" * 32, "From": f"whatsapp:{PHONE}",
              "To": "whatsapp:+14155238886", "Body": body, "NumMedia": "0"}
    resp = await client.post("/whatsapp_inbound", form=params,
                             headers={"X-Twilio-Signature": SignatureChecker(AUTH).sign(URL, params)})
    assert resp.status_code == 200, await resp.get_data()
    store = client.app.config["STORE"]
    with store.engine.connect() as conn:
        return conn.execute(sa.select(schema.outbox.c.body).where(schema.outbox.c.key == f"wa-reply:{params['MessageSid']}")
                            ).scalar_one()


def foreign(calendar, start: dt.datetime) -> None:
    calendar.save_event(to_ics(MeetingEvent(new_uid(), start, start + dt.timedelta(hours=1), name="dentist"), T0))


def our_events(calendar, uid: str) -> list[dt.datetime]:
    return [c["dtstart"].dt for obj in calendar.events() for c in obj.icalendar_instance.walk("VEVENT")
            if str(c["uid"]) == uid]


def lead_row(store: Store) -> dict:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(schema.leads).where(schema.leads.c.phone == PHONE)).mappings().one())


def offered(store: Store) -> list[dt.datetime]:
    with store.engine.connect() as conn:
        values = conn.execute(sa.select(schema.whatsapp_threads.c.offered)).scalar() or []
    return [dt.datetime.fromisoformat(v).astimezone(TZ) for v in values]


async def test_reschedule_over_whatsapp_moves_the_event_and_a_taken_slot_gets_the_next(
        radicale, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    access, calendar = radicale.new_calendar()
    meetings = meetings_for(access, store)
    uid = await booked(store, meetings)
    foreign(calendar, TOMORROW[0])  # the realtor is busy tomorrow at 10
    client = app_for(store, meetings, monkeypatch).test_client()

    # Without the calendar: "מחר ב-10:00, ב-13:00 או ב-16:00"; the 10:00 is busy there.
    offer = await say(client, "אפשר להזיז למחר?")
    assert offer == "אין בעיה. מתאים מחר (02.12) ב-13:00 או ב-16:00?"
    assert offered(store) == TOMORROW[1:]
    assert (await say(client, "הראשון")) == "אז מחר (02.12) ב-13:00, לקבוע?"

    foreign(calendar, TOMORROW[1])  # taken between the offer and the yes
    taken = await say(client, "כן")
    assert taken.startswith("המועד הזה נתפס הרגע. מתאים ") and taken.endswith("?"), taken
    again = offered(store)
    assert 2 <= len(again) <= 3 and not set(again) & set(TOMORROW[:2])
    busy = await meetings.busy(meetings.realtors.all[0])
    assert all(schedule.is_free(w, busy, meetings.rules) for w in again)
    assert our_events(calendar, uid) == [TODAY_16]  # not moved
    assert schema.utc(lead_row(store)["meeting_at"]) == TODAY_16

    await say(client, "הראשון")
    confirmed = await say(client, "כן")
    first = again[0]
    assert confirmed.startswith("קבענו ") and "\nלהוספה ליומן: https://agent.example/meetings/" in confirmed, confirmed
    link = confirmed.split("להוספה ליומן: ", 1)[1]
    assert f"/meetings/{uid}.ics?e=" in link
    assert our_events(calendar, uid) == [first]  # the same event, moved
    row = lead_row(store)
    assert schema.utc(row["meeting_at"]) == first and row["status"] == "meeting_booked"
    meeting = await meetings.get(uid)
    assert meeting is not None and meeting.starts_at == first and meeting.status == "booked"

    assert (await say(client, "סליחה, אני צריכה לבטל את הפגישה")) == "ביטלתי את הפגישה. לקבוע מועד אחר?"
    assert our_events(calendar, uid) == []
    assert (await meetings.get(uid)).status == "cancelled"  # type: ignore[union-attr]
    assert lead_row(store)["meeting_at"] is None

    # a new time after the cancel: a new event, in the same calendar
    offer = await say(client, "כן")
    assert offer.startswith("אין בעיה. מתאים ")
    await say(client, "הראשון")
    rebooked = await say(client, "כן")
    assert rebooked.startswith("קבענו ") and "להוספה ליומן: " in rebooked
    active = await meetings.active_for(PHONE)
    assert active is not None and active.uid != uid and our_events(calendar, active.uid) == [offered_first(rebooked)]


def offered_first(reply: str) -> dt.datetime:
    """The time a "קבענו ..." line names (day.month at HH:MM)."""
    import re

    day, month, hour = re.search(r"\((\d\d)\.(\d\d)\) ב-(\d\d):00", reply).groups()  # type: ignore[union-attr]
    return dt.datetime(2026, int(month), int(day), int(hour), tzinfo=TZ)


async def test_a_calendar_that_does_not_answer_keeps_todays_behaviour(store: Store, monkeypatch, capsys) -> None:
    from telemetry import logs

    logs.configure()
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/realtor/work/"
        meetings = meetings_for(CalendarAccess(url, "realtor", "x"), store, timeout_s=0.3)
        uid = await booked(store, meetings)  # offline: kept in our database
        client = app_for(store, meetings, monkeypatch).test_client()
        started = trio.current_time()
        offer = await say(client, "אפשר להזיז למחר?")
        assert offer == "אין בעיה. מתאים מחר (02.12) ב-10:00, ב-13:00 או ב-16:00?"  # the office-hour rules
        await say(client, "הראשון")
        confirmed = await say(client, "כן")
        took = trio.current_time() - started
    assert confirmed.startswith("קבענו מחר (02.12) ב-10:00. נתראה!") and "להוספה ליומן" in confirmed
    assert took < 1.5, took  # the calendar was not asked again after it failed
    row = lead_row(store)
    assert schema.utc(row["meeting_at"]) == TOMORROW[0] and row["status"] == "meeting_booked"
    meeting = await meetings.get(uid)
    assert meeting is not None and meeting.starts_at == TOMORROW[0] and meeting.href is None
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert any(x["event"] == "CALENDAR" and x["state"] == "down" for x in out)
    webhook = [x for x in out if x["event"] == "WEBHOOK" and x.get("action") == "book"]
    assert webhook and webhook[-1]["calendar"] == "offline"


async def test_without_a_meetings_row_a_yes_books_a_new_event(radicale, store: Store, monkeypatch) -> None:
    """A meeting only in the lead's row (booked before the calendar was set up): the lead's
    new time is booked as a new event."""
    access, calendar = radicale.new_calendar()
    meetings = meetings_for(access, store)
    rec = SqlRecorder(store, lead_webhook=False)
    sid = "CA" + "2" * 32
    await rec.call_started(CallInfo(sid, "MZ" + "2" * 32, PHONE, "+97233001122", T0 - dt.timedelta(hours=1)))
    lead = LeadState(Slots(area="רמת גן", name="דנה לוי"), status="meeting_booked", meeting_at=TODAY_16)
    await rec.call_ended(sid, T0 - dt.timedelta(minutes=50), "agent_hangup", "meeting_booked", CallMetrics(turns=6),
                         PHONE, lead, "תודה דנה!")
    client = app_for(store, meetings, monkeypatch).test_client()
    await say(client, "אפשר להזיז למחר?")
    await say(client, "הראשון")
    assert (await say(client, "כן")).startswith("קבענו מחר (02.12) ב-10:00.")
    active = await meetings.active_for(PHONE)
    assert active is not None and active.details.get("name") == "דנה לוי"
    assert our_events(calendar, active.uid) == [TOMORROW[0]]


async def test_a_models_reschedule_offers_windows_free_in_the_calendar(radicale, store: Store, monkeypatch,
                                                                      nursery) -> None:
    """A wish the rules cannot read goes to the OpenAI text brain (the fake OpenAI server):
    its "reschedule" becomes the rules' offer, with windows free in the calendar too."""
    import sys
    from pathlib import Path

    sys.path.append(str(Path(__file__).resolve().parents[1] / "dialog"))
    from fake_openai import FakeOpenAI, Script

    from dialog.openai_brain import OpenAIConfig
    from dialog.whatsapp_openai import TOOL_NAME, OpenAIText

    fake = FakeOpenAI()
    await nursery.start(fake.serve)
    access, calendar = radicale.new_calendar()
    meetings = meetings_for(access, store)
    await booked(store, meetings)
    plain = schedule.offer_windows(T0, 3, exclude=[TODAY_16])  # what the office hours alone give
    foreign(calendar, plain[0])
    app = app_for(store, meetings, monkeypatch)
    app.extensions[BRAIN_KEY] = TextBrain(OpenAIText(OpenAIConfig(api_key="sk-test", model="fake-model",
                                                                  base_url=fake.base_url, turn_timeout_s=5)),
                                          clock=lambda: T0)
    fake.push(Script("", tool_args={"action": "reschedule"}, tool_name=TOOL_NAME))
    offer = await say(app.test_client(), "יש מצב שנעשה את זה קצת יותר מאוחר השבוע?")
    assert offer.startswith("אין בעיה. מתאים ") and len(fake.requests) == 1
    windows = offered(store)
    assert 2 <= len(windows) <= 3 and plain[0] not in windows and TODAY_16 not in windows
