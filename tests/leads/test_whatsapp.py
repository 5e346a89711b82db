"""Two-way WhatsApp: Twilio-signed inbound webhooks on the real blueprint, the real store
(SQLite; PostgreSQL too where marked), and the outbox sender talking to a local fake of
Twilio's Messages REST API through the official client. The brain's and the sender's
clocks are frozen, so the 24-hour window and the offered windows are exact."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
import trio
from quart_trio import QuartTrio

from dialog.base import LeadState, Slots
from dialog.schedule import TZ
from leads import schema
from leads.base import CallInfo, CallMetrics
from leads.optout import is_opted_out
from leads.outbox import OutboxConfig, OutboxSender, template_variables
from leads.store import SqlRecorder, Store
from leads.whatsapp import send_mode
from server.dashboard import dashboard_bp
from server.inflow import inflow_bp
from server.security import SignatureChecker
from server.whatsapp import BRAIN_KEY, TextBrain, whatsapp_bp

AUTH = "authtok"
SID = "AC" + "0" * 32
PHONE = "+972501234567"
SENDER = "+14155238886"
TEMPLATE = "HX" + "a" * 32
# Tuesday 1 December 2026, 09:00 in Israel.
T0 = dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.timezone.utc)
URL = "http://localhost/whatsapp_inbound"


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += dt.timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def app(store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> QuartTrio:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH)
    app = QuartTrio(__name__)
    app.config["STORE"] = store
    app.config["DASHBOARD_TOKEN"] = ""
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(inflow_bp)
    app.register_blueprint(whatsapp_bp)
    app.extensions[BRAIN_KEY] = TextBrain(clock=clock)
    return app


def sender(store: Store, fake, clock: Clock, template: str | None = TEMPLATE) -> OutboxSender:
    cfg = OutboxConfig(account_sid=SID, auth_token=AUTH, whatsapp_from=SENDER, api_base_url=fake.url,
                       status_callback_url="https://agent.example/whatsapp_status", whatsapp_template_sid=template,
                       backoff_base_s=0.01, backoff_cap_s=0.05, idle_poll_s=0.2, http_timeout_s=5)
    return OutboxSender(store, cfg, clock=clock)


_n = 0


def form(body: str, phone: str = PHONE, **extra: str) -> dict[str, str]:
    global _n
    _n += 1
    return {"MessageSid": f"SM{_n:032x}", "AccountSid": SID, "From": f"whatsapp:{phone}",
            "To": f"whatsapp:{SENDER}", "Body": body, "NumMedia": "0", "ProfileName": "Dana", **extra}


async def post(client, params: dict[str, str], signature: str | None = "sign"):  # type: ignore[no-untyped-def]
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = SignatureChecker(AUTH).sign(URL, params)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    return await client.post("/whatsapp_inbound", form=params, headers=headers)


async def say(client, body: str, phone: str = PHONE) -> dict[str, str]:  # type: ignore[no-untyped-def]
    params = form(body, phone)
    resp = await post(client, params)
    assert resp.status_code == 200, await resp.get_data()
    assert "<Response/>" in (await resp.get_data(as_text=True))
    return params


async def deliver(store: Store, out: OutboxSender) -> None:
    with trio.fail_after(10):
        while await out.pass_once():
            pass


def lead_row(store: Store, phone: str = PHONE) -> dict:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(schema.leads).where(schema.leads.c.phone == phone)).mappings().one())


async def book_by_phone(store: Store, meeting: dt.datetime) -> None:
    """A call that booked a meeting: its WhatsApp summary is queued in the outbox."""
    rec = SqlRecorder(store, lead_webhook=False)
    sid = "CA" + "1" * 32
    await rec.call_started(CallInfo(sid, "MZ" + "1" * 32, PHONE, "+97233001122", T0 - dt.timedelta(hours=1)))
    lead = LeadState(Slots(area="רמת גן", name="דנה לוי"), status="meeting_booked", meeting_at=meeting)
    await rec.call_ended(sid, T0 - dt.timedelta(minutes=50), "agent_hangup", "meeting_booked", CallMetrics(turns=6),
                         PHONE, lead, "תודה דנה!\nנתראה היום ב-16:00.")
    with store.engine.begin() as conn:  # queued on the frozen clock, like the rest of the test
        conn.execute(schema.outbox.update().values(created_at=T0 - dt.timedelta(minutes=50),
                                                   next_attempt_at=T0 - dt.timedelta(minutes=50)))


def last_body(fake) -> str:  # type: ignore[no-untyped-def]
    return fake.messages()[-1]["Body"]


# -- the webhook's door -------------------------------------------------------------------------

async def test_forged_or_missing_signature_is_403_and_nothing_is_stored(app, store: Store) -> None:
    client = app.test_client()
    params = form("שלום")
    assert (await post(client, params, signature=None)).status_code == 403
    assert (await post(client, params, signature="bm90IGEgc2lnbmF0dXJl")).status_code == 403
    # signed for other parameters (a body swapped in transit)
    forged = SignatureChecker(AUTH).sign(URL, {**params, "Body": "something else"})
    assert (await post(client, params, signature=forged)).status_code == 403
    # signed with another account's token
    assert (await post(client, params, signature=SignatureChecker("other").sign(URL, params))).status_code == 403
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.whatsapp_messages)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.leads)).scalar() == 0
    assert (await post(client, params)).status_code == 200


async def test_bad_sender_or_message_sid_is_400_naming_the_field(app, store: Store) -> None:
    client = app.test_client()
    resp = await post(client, form("hi", phone="not-a-number"))
    assert resp.status_code == 400 and (await resp.get_data(as_text=True)).startswith("From:")
    resp = await post(client, {**form("hi"), "MessageSid": "SMnothex"})
    assert resp.status_code == 400 and (await resp.get_data(as_text=True)).startswith("MessageSid:")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.whatsapp_messages)).scalar() == 0


async def test_an_unknown_number_becomes_a_whatsapp_lead_flagged_for_a_person(app, store: Store, fake_twilio,
                                                                             clock: Clock) -> None:
    app.config["DASHBOARD_TOKEN"] = "dash-token"
    bearer = {"Authorization": "Bearer dash-token"}
    client = app.test_client()
    stranger = "+972541112233"
    await say(client, "ראיתי את המודעה שלכם, יש לכם משהו ביפו?", stranger)
    row = lead_row(store, stranger)
    assert row["source"] == "whatsapp" and row["status"] == "new"
    assert row["needs_person"] == "not something the rules can answer"
    await deliver(store, sender(store, fake_twilio, clock))
    [sent] = fake_twilio.messages()
    # they just wrote: inside the 24-hour window, so free text, to their WhatsApp address
    assert sent["To"] == f"whatsapp:{stranger}" and sent["From"] == f"whatsapp:{SENDER}"
    assert sent["Body"] == "תודה, נציג שלנו יחזור אליך כאן בהקדם." and "ContentSid" not in sent
    assert (await client.get("/api/leads")).status_code == 401  # the dashboard's protection
    leads = await (await client.get("/api/leads", headers=bearer)).get_json()
    assert leads[0]["phone"] == stranger and leads[0]["needs_person"] is True
    thread = await (await client.get(f"/api/leads/{stranger}/whatsapp", headers=bearer)).get_json()
    assert [(m["direction"], m.get("action") or m.get("kind")) for m in thread] == [("in", "handoff"), ("out", "reply")]
    assert thread[1]["state"] == "sent" and thread[1]["sent_as"] == "text"
    assert thread[1]["in_reply_to"] == thread[0]["message_sid"]
    # the lead API (server.inflow) carries the same thread, and where the lead came from
    detail = await (await client.get(f"/api/leads/{stranger}", headers=bearer)).get_json()
    assert detail["messages"] == thread and detail["lead"]["source"] == "whatsapp"
    assert detail["lead"]["needs_person"] is True
    # a person takes it: the flag goes down
    assert (await client.post(f"/api/leads/{stranger}/needs_person/clear")).status_code == 401
    cleared = await client.post(f"/api/leads/{stranger}/needs_person/clear", headers=bearer)
    assert await cleared.get_json() == {"phone": stranger, "cleared": True}
    assert lead_row(store, stranger)["needs_person"] is None


async def test_reschedule_to_tomorrow_offers_new_windows_then_confirms(app, store: Store, fake_twilio,
                                                                      clock: Clock) -> None:
    today_16 = dt.datetime(2026, 12, 1, 16, 0, tzinfo=TZ)
    await book_by_phone(store, today_16)
    client = app.test_client()
    out = sender(store, fake_twilio, clock)
    # the call's follow-up goes first: the lead never wrote to us, so it is the template
    await deliver(store, out)
    followup = fake_twilio.messages()[-1]
    assert followup["ContentSid"] == TEMPLATE and "Body" not in followup
    assert json.loads(followup["ContentVariables"]) == {"1": "דנה", "2": "תודה דנה! · נתראה היום ב-16:00."}
    assert followup["StatusCallback"] == "https://agent.example/whatsapp_status"

    clock.advance(minutes=30)
    await say(client, "אפשר להזיז למחר?")
    await deliver(store, out)
    offer = last_body(fake_twilio)
    assert offer == "אין בעיה. מתאים מחר (02.12) ב-10:00, ב-13:00 או ב-16:00?"
    assert "ContentSid" not in fake_twilio.messages()[-1]  # they wrote: free text now
    await say(client, "בעשר")
    await deliver(store, out)
    assert last_body(fake_twilio) == "אז מחר (02.12) ב-10:00, לקבוע?"
    await say(client, "כן")
    await deliver(store, out)
    assert last_body(fake_twilio) == "קבענו מחר (02.12) ב-10:00. נתראה!"
    row = lead_row(store)
    assert schema.utc(row["meeting_at"]) == dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ)
    assert row["status"] == "meeting_booked" and row["needs_person"] is None
    # every reply obeys the phone's rules: short, at most one question, last
    for message in fake_twilio.messages()[1:]:
        assert len(message["Body"].split()) <= 20 and message["Body"].count("?") <= 1
    thread = await (await client.get(f"/api/leads/{PHONE}/whatsapp")).get_json()
    assert [m["direction"] for m in thread] == ["out", "in", "out", "in", "out", "in", "out"]
    assert thread[0]["kind"] == "followup" and thread[0]["sent_as"] == "template"
    assert [m["action"] for m in thread if m["direction"] == "in"] == ["offer", "choose", "book"]


async def test_a_yes_confirms_the_meeting_and_cancel_cancels_it(app, store: Store, fake_twilio, clock: Clock) -> None:
    await book_by_phone(store, dt.datetime(2026, 12, 2, 13, 0, tzinfo=TZ))
    client = app.test_client()
    out = sender(store, fake_twilio, clock)
    await say(client, "מאשרת, נתראה")
    await deliver(store, out)
    assert "בתוקף" in last_body(fake_twilio)
    await say(client, "סליחה, אני צריכה לבטל את הפגישה")
    await deliver(store, out)
    assert last_body(fake_twilio) == "ביטלתי את הפגישה. לקבוע מועד אחר?"
    row = lead_row(store)
    assert row["meeting_at"] is None and row["status"] == "qualified"
    await say(client, "לא תודה")
    await deliver(store, out)
    assert last_body(fake_twilio) == "בסדר גמור. אם תרצו לקבוע, כתבו לנו כאן."
    assert lead_row(store)["needs_person"] is None


async def test_stop_opts_out_of_whatsapp_and_calls(app, store: Store, fake_twilio, clock: Clock) -> None:
    from leads import dialjobs

    await book_by_phone(store, dt.datetime(2026, 12, 2, 13, 0, tzinfo=TZ))
    with store.engine.begin() as conn:  # a call the dialer was to place later
        job_id, queued = dialjobs.enqueue(conn, PHONE, "operator", T0 + dt.timedelta(hours=3), now=T0)
    assert queued == "queued"
    client = app.test_client()
    await say(client, "STOP")
    assert await store.run(is_opted_out, store, PHONE)
    [job] = dialjobs.jobs_for(store, PHONE)
    assert job["state"] == "cancelled"  # no more calls either
    with store.engine.begin() as conn:
        assert dialjobs.enqueue(conn, PHONE, "operator", T0, now=T0) == (None, "opted_out")
    out = sender(store, fake_twilio, clock)
    await deliver(store, out)
    # the call's follow-up (queued before) is not sent; the one line confirming the opt-out is
    bodies = [m.get("Body") for m in fake_twilio.messages()]
    assert bodies == ["You're removed: no more messages or calls from us. Have a good day."]
    await say(client, "אפשר להזיז למחר?")  # a message after it: kept, never answered
    await deliver(store, out)
    assert len(fake_twilio.messages()) == 1
    thread = await (await client.get(f"/api/leads/{PHONE}/whatsapp")).get_json()
    states = {(m["direction"], m.get("kind"), m.get("state"), m.get("action")) for m in thread}
    assert ("out", "followup", "opted_out", None) in states
    assert ("in", None, None, "ignore") in states and ("in", None, None, "opt_out") in states


async def test_hebrew_remove_word_opts_out(app, store: Store, fake_twilio, clock: Clock) -> None:
    from telemetry.metrics import REGISTRY

    def counted() -> float:
        return REGISTRY.get_sample_value("agentlocator_whatsapp_inbound_total",
                                         {"action": "opt_out", "brain": "rules"}) or 0.0

    before = counted()
    client = app.test_client()
    await say(client, "הסר")
    assert counted() - before == 1
    assert await store.run(is_opted_out, store, PHONE)
    await deliver(store, sender(store, fake_twilio, clock))
    assert last_body(fake_twilio) == "הוסרת מהרשימה: לא נשלח עוד הודעות ולא נתקשר. יום טוב."


async def test_twilio_retrying_a_message_stores_and_answers_it_once(app, store: Store, fake_twilio,
                                                                   clock: Clock) -> None:
    client = app.test_client()
    params = form("מה השעה של הפגישה?")
    for _ in range(3):
        assert (await post(client, params)).status_code == 200
    await deliver(store, sender(store, fake_twilio, clock))
    assert len(fake_twilio.messages()) == 1
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.whatsapp_messages)).scalar() == 1


async def test_the_24_hour_window_with_a_frozen_clock(app, store: Store, fake_twilio, clock: Clock) -> None:
    client = app.test_client()
    await say(client, "שלום, אני רוצה לקבוע פגישה")  # the window opens now (T0)
    out = sender(store, fake_twilio, clock)
    clock.advance(hours=23, minutes=59)  # the reply waited (the sender was down): still inside
    await deliver(store, out)
    assert "Body" in fake_twilio.messages()[-1] and "ContentSid" not in fake_twilio.messages()[-1]
    # a reply queued inside the window but sent after it closed goes as the template
    params = form("מחר בעשר?")
    with store.engine.begin() as conn:  # the lead's message a day and a minute before the send
        conn.execute(schema.whatsapp_threads.update().values(last_inbound_at=T0))
    clock.at = T0 + dt.timedelta(hours=23)
    app.extensions[BRAIN_KEY].clock = lambda: T0 + dt.timedelta(hours=23)
    await post(client, params)
    with store.engine.begin() as conn:
        conn.execute(schema.whatsapp_threads.update().values(last_inbound_at=T0))
    clock.at = T0 + dt.timedelta(hours=24, minutes=1)
    await deliver(store, out)
    late = fake_twilio.messages()[-1]
    assert late["ContentSid"] == TEMPLATE and "Body" not in late
    assert json.loads(late["ContentVariables"])["2"]  # our text, in the template's variable
    with store.engine.connect() as conn:
        sent_as = [r.sent_as for r in conn.execute(sa.select(schema.outbox.c.sent_as).order_by(schema.outbox.c.id))]
    assert sent_as == ["text", "template"]


def test_send_mode_and_template_variables() -> None:
    assert send_mode(None, T0) == "template"
    assert send_mode(T0, T0 + dt.timedelta(hours=23, minutes=59, seconds=59)) == "text"
    assert send_mode(T0, T0 + dt.timedelta(hours=24)) == "template"
    assert send_mode(T0.replace(tzinfo=None), T0 + dt.timedelta(hours=1)) == "text"  # SQLite's naive UTC
    assert template_variables("דנה לוי", "שורה\n\nשנייה\tעם     רווחים") == {"1": "דנה", "2": "שורה · שנייה עם רווחים"}
    assert template_variables(None, "x" * 2000)["2"].endswith("…")
    assert len(template_variables(None, "x" * 2000)["2"]) == 900


async def test_without_a_template_outside_the_window_goes_as_text(store: Store, fake_twilio, clock: Clock) -> None:
    await book_by_phone(store, dt.datetime(2026, 12, 2, 13, 0, tzinfo=TZ))
    await deliver(store, sender(store, fake_twilio, clock, template=None))
    assert fake_twilio.messages()[-1]["Body"] == "תודה דנה!\nנתראה היום ב-16:00."


async def test_delivery_status_callbacks_reach_the_thread(app, store: Store, fake_twilio, clock: Clock) -> None:
    client = app.test_client()
    await say(client, "הסר")
    await deliver(store, sender(store, fake_twilio, clock))
    thread = await (await client.get(f"/api/leads/{PHONE}/whatsapp")).get_json()
    sid = thread[-1]["message_sid"]
    assert sid and thread[-1]["state"] == "sent"
    for status in ("delivered", "read"):
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": SID}
        sig = SignatureChecker(AUTH).sign("http://localhost/whatsapp_status", params)
        resp = await client.post("/whatsapp_status", form=params, headers={"X-Twilio-Signature": sig})
        assert resp.status_code == 204
    thread = await (await client.get(f"/api/leads/{PHONE}/whatsapp")).get_json()
    assert thread[-1]["state"] == "read"


def _fake_openai_module():  # type: ignore[no-untyped-def]
    """tests/dialog/fake_openai.py (the OpenAI fake the brain tests use)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "agentlocator_tests_fake_openai"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "dialog" / "fake_openai.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


async def test_what_the_rules_cannot_read_goes_to_the_openai_text_brain(app, store: Store, fake_twilio, clock: Clock,
                                                                      nursery) -> None:
    from dialog.openai_brain import OpenAIConfig
    from dialog.whatsapp_openai import TOOL_NAME, OpenAIText

    mod = _fake_openai_module()
    fake = mod.FakeOpenAI()
    await nursery.start(fake.serve)
    app.extensions[BRAIN_KEY] = TextBrain(
        OpenAIText(OpenAIConfig(api_key="sk-test", model="fake-model", base_url=fake.base_url)), clock=clock)
    await book_by_phone(store, dt.datetime(2026, 12, 1, 16, 0, tzinfo=TZ))
    fake.push(mod.Script(status=500), mod.Script("", tool_args={"action": "reschedule"}, tool_name=TOOL_NAME))
    client = app.test_client()
    out = sender(store, fake_twilio, clock)
    await deliver(store, out)  # the follow-up
    await say(client, "אפשר לשאול משהו על החניה?")  # the API fails: the rules' handoff stands
    await say(client, "יש מצב שנעשה את זה קצת יותר מאוחר השבוע?")
    await say(client, "אפשר להזיז למחר?")  # the rules read this one: no request
    assert len(fake.requests) == 2
    # the conversation so far went with the request: the follow-up, as our message
    assert any(m["role"] == "assistant" and "נתראה היום" in m["content"] for m in fake.requests[1]["messages"])
    await deliver(store, out)
    thread = await (await client.get(f"/api/leads/{PHONE}/whatsapp")).get_json()
    ins = [(m["brain"], m["action"]) for m in thread if m["direction"] == "in"]
    assert ins == [("rules", "handoff"), ("openai", "offer"), ("rules", "offer")]
    assert lead_row(store)["needs_person"] == "not something the rules can answer"
    bodies = [m["Body"] for m in fake_twilio.messages()[1:]]
    assert bodies[0] == "תודה, נציג שלנו יחזור אליך כאן בהקדם." and bodies[1].startswith("אין בעיה. מתאים ")
    # a new offer never repeats a window already offered (Wednesday 10:00 was)
    assert bodies[2] == "אין בעיה. מתאים מחר (02.12) ב-13:00 או ב-16:00?"


async def test_a_message_stored_but_never_answered_is_answered_on_twilios_retry(app, store: Store, fake_twilio,
                                                                              clock: Clock) -> None:
    from leads.whatsapp import Inbound, record_inbound

    params = form("אפשר להזיז למחר?")
    # the process stored it, then died before answering (Twilio saw no 200 and retries)
    assert record_inbound(store, Inbound.from_form(params), T0) is not None
    client = app.test_client()
    assert (await post(client, params)).status_code == 200
    assert (await post(client, params)).status_code == 200  # and once more: answered already
    await deliver(store, sender(store, fake_twilio, clock))
    assert len(fake_twilio.messages()) == 1 and fake_twilio.messages()[0]["Body"].startswith("אין בעיה. מתאים")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(schema.whatsapp_messages.c.action)).scalars().all() == ["offer"]


async def test_without_an_auth_token_only_local_requests(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("AGENTLOCATOR_INSECURE", raising=False)
    app = QuartTrio(__name__)
    app.config["STORE"] = store
    app.register_blueprint(whatsapp_bp)
    app.extensions[BRAIN_KEY] = TextBrain(clock=Clock(T0))
    client = app.test_client()
    remote = await client.post("/whatsapp_inbound", form=form("שלום"), scope_base={"client": ("198.51.100.4", 5555)})
    assert remote.status_code == 403
    proxied = await client.post("/whatsapp_inbound", form=form("שלום"), headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403
    assert (await client.post("/whatsapp_inbound", form=form("שלום"))).status_code == 200


def test_two_messages_of_one_lead_on_two_instances_are_answered_in_turn(db_url: str) -> None:
    """Instance A is still deciding on "אפשר להזיז למחר?" when instance B gets "בעשר": B waits
    for A's transaction and answers on the thread as A left it (a pick from A's offer)."""
    import threading
    import time as _time

    from dialog import whatsapp as rules
    from leads.whatsapp import Inbound, receive

    a, b = Store.open(db_url), Store.open(db_url)
    try:
        now = T0
        first, second = Inbound.from_form(form("אפשר להזיז למחר?")), Inbound.from_form(form("בעשר"))
        deciding = threading.Event()
        out: dict[str, object] = {}

        def slow(thread, opted_out):  # type: ignore[no-untyped-def]
            deciding.set()
            _time.sleep(0.4)  # A holds its transaction while it decides
            return rules.decide(first.body, thread, now)

        def run_a() -> None:
            out["a"] = receive(a, first, now, slow)

        worker = threading.Thread(target=run_a)
        worker.start()
        assert deciding.wait(10)
        out["b"] = receive(b, second, now, lambda thread, _o: rules.decide(second.body, thread, now))
        worker.join(10)
        assert out["a"].decision.action == "offer"  # type: ignore[union-attr]
        got_b = out["b"]
        assert got_b.thread.phase == "offer" and got_b.decision.action == "choose"  # type: ignore[union-attr]
        assert got_b.decision.thread.chosen == dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ)  # type: ignore[union-attr]
    finally:
        a.close()
        b.close()
