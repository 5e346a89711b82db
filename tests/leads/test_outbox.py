"""The outbox against a local fake Twilio REST endpoint (the official client pointed at it)."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import sqlalchemy as sa
import trio

from dialog.base import LeadState, Slots
from leads import schema
from leads.base import CallInfo, CallMetrics
from leads.outbox import (
    OutboxConfig, OutboxSender, backoff_s, claim_due, next_delivery_state, run_outbox_sender, sign_webhook,
)
from leads.store import SqlRecorder, Store

PHONE = "+972501234567"
SID, TOKEN = "AC" + "0" * 32, "authtoken"


def cfg(fake, **kw) -> OutboxConfig:
    base = dict(account_sid=SID, auth_token=TOKEN, whatsapp_from="+14155238886", api_base_url=fake.url,
                status_callback_url="https://agent.example/whatsapp_status", backoff_base_s=0.01,
                backoff_cap_s=0.05, idle_poll_s=0.2, http_timeout_s=5)
    return OutboxConfig(**(base | kw))


def items(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(schema.outbox).order_by(schema.outbox.c.id)).mappings()]


async def end_call(store: Store, sid: str = "CA00000000000000000000000000000001", status: str = "meeting_booked", webhook: bool = False) -> None:
    rec = SqlRecorder(store, lead_webhook=webhook)
    now = dt.datetime.now(dt.timezone.utc)
    await rec.call_started(CallInfo(sid, "MZ" + sid[2:], PHONE, "+97233001122", now))
    await rec.call_ended(sid, now, "agent_hangup", status, CallMetrics(turns=4), PHONE,
                         LeadState(Slots(area="רמת גן", name="דנה"), status=status), "תודה! נתראה ביום ראשון 10:30")


async def drain(sender: OutboxSender, store: Store, until: set[str], timeout: float = 10.0) -> None:
    """Run delivery passes (real time: the backoffs are tens of ms) until every item settles."""
    with trio.fail_after(timeout):
        while {i["state"] for i in items(store)} - until:
            if not await sender.pass_once():
                await trio.sleep(0.01)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_s(n, 2.0, 60.0) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


def test_status_callbacks_only_move_forward() -> None:
    assert next_delivery_state("sent", "delivered") == "delivered"
    assert next_delivery_state("delivered", "sent") is None
    assert next_delivery_state("read", "delivered") is None
    assert next_delivery_state("sent", "undelivered") == "undelivered"
    assert next_delivery_state("failed", "delivered") is None
    assert next_delivery_state("dry_run", "delivered") is None


def counted(result: str) -> float:
    from telemetry.metrics import REGISTRY

    return REGISTRY.get_sample_value("agentlocator_outbox_deliveries_total",
                                     {"channel": "whatsapp", "result": result}) or 0.0


async def test_retries_server_errors_then_sends_once(store: Store, fake_twilio) -> None:
    fake_twilio.script = [(503, {"message": "busy"}), (500, {"message": "oops"})]
    retries, sent = counted("retry"), counted("sent")
    await end_call(store)
    await drain(OutboxSender(store, cfg(fake_twilio)), store, {"sent"})
    assert (counted("retry") - retries, counted("sent") - sent) == (2, 1)
    [item] = items(store)
    assert item["attempts"] == 3 and item["last_error"] is None
    msgs = fake_twilio.messages()
    assert len(msgs) == 3
    assert msgs[-1]["To"] == f"whatsapp:{PHONE}" and msgs[-1]["From"] == "whatsapp:+14155238886"
    assert msgs[-1]["Body"] == "תודה! נתראה ביום ראשון 10:30"
    assert msgs[-1]["StatusCallback"] == "https://agent.example/whatsapp_status"
    assert msgs[-1]["_auth"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert fake_twilio.requests[-1]["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert item["provider_id"] == "SM" + "3".zfill(32)


async def test_permanent_error_fails_without_retry(store: Store, fake_twilio) -> None:
    fake_twilio.script = [(400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})]
    await end_call(store)
    await drain(OutboxSender(store, cfg(fake_twilio)), store, {"failed"})
    [item] = items(store)
    assert item["attempts"] == 1 and "21211" in item["last_error"]
    assert len(fake_twilio.messages()) == 1


async def test_gives_up_after_max_attempts(store: Store, fake_twilio) -> None:
    fake_twilio.default = (502, {"message": "bad gateway"})
    await end_call(store)
    await drain(OutboxSender(store, cfg(fake_twilio, max_attempts=4)), store, {"failed"})
    assert items(store)[0]["attempts"] == 4
    assert len(fake_twilio.messages()) == 4


async def test_dry_run_without_credentials(store: Store, fake_twilio) -> None:
    await end_call(store)
    sender = OutboxSender(store, cfg(fake_twilio, account_sid=None, auth_token=None))
    await drain(sender, store, {"dry_run"})
    assert fake_twilio.requests == []


async def test_lead_webhook_is_signed_and_retried(store: Store, fake_twilio) -> None:
    fake_twilio.script = [(201, {}), (500, {}), (200, {})]  # WhatsApp ok; webhook fails once
    await end_call(store, webhook=True)
    conf = cfg(fake_twilio, webhook_url=fake_twilio.url + "/hooks/lead", webhook_secret="whsec")
    await drain(OutboxSender(store, conf), store, {"sent", "delivered"})
    hooks = [r for r in fake_twilio.requests if r["path"] == "/hooks/lead"]
    assert len(hooks) == 2
    h = hooks[-1]["headers"]
    assert h["X-AgentLocator-Signature"] == sign_webhook("whsec", int(h["X-AgentLocator-Timestamp"]), hooks[-1]["body"])
    assert h["Idempotency-Key"] == "webhook:CA00000000000000000000000000000001"
    payload = json.loads(hooks[-1]["body"])
    assert payload["call_sid"] == "CA00000000000000000000000000000001"
    assert payload["lead"]["phone"] == PHONE and payload["lead"]["status"] == "meeting_booked"


async def test_no_webhook_for_an_unqualified_lead(store: Store) -> None:
    await end_call(store, status="new", webhook=True)
    assert [i["channel"] for i in items(store)] == ["whatsapp"]


async def test_sender_task_wakes_on_call_end_and_resumes_after_restart(store: Store, fake_twilio) -> None:
    # A sender died after claiming an item (left 'sending'), and a call was cut by a crash.
    await end_call(store, "CA00000000000000000000000000000000")
    assert len(claim_due(store, dt.datetime.now(dt.timezone.utc))) == 1
    rec = SqlRecorder(store)
    await rec.call_started(CallInfo("CA00000000000000000000000000000001", "MZ00000000000000000000000000000001", PHONE, "+97233001122", dt.datetime.now(dt.timezone.utc)))
    await rec.lead_updated("CA00000000000000000000000000000001", PHONE, LeadState(Slots(area="חיפה")), whatsapp_summary="סיכום חלקי")
    await trio.sleep(0.01)
    restarted = Store.open(str(store.engine.url.render_as_string(hide_password=False)))  # the "new process"
    store.close()
    store = restarted
    async with trio.open_nursery() as nursery:
        await nursery.start(run_outbox_sender, store, cfg(fake_twilio, idle_poll_s=60))
        with trio.fail_after(10):
            while {i["state"] for i in items(store)} != {"sent"}:
                await trio.sleep(0.02)
        assert sorted(m["Body"] for m in fake_twilio.messages()) == ["סיכום חלקי", "תודה! נתראה ביום ראשון 10:30"]
        # A new call ending while the sender idles is delivered at once: the recorder wakes
        # the sender (its idle poll here is 60 s, far past the deadline).
        await trio.sleep(0.1)
        await end_call(store, "CA00000000000000000000000000000002")
        with trio.fail_after(5):
            while [i["state"] for i in items(store)] != ["sent", "sent", "sent"]:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert len(fake_twilio.messages()) == 3  # each call's follow-up exactly once
    store.close()


@pytest.mark.parametrize("env,dry", [({}, True), ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "x",
                                                   "TWILIO_WHATSAPP_FROM": "whatsapp:+1415"}, False)])
def test_config_from_env(env: dict, dry: bool) -> None:
    conf = OutboxConfig.coerce({**env, "PUBLIC_BASE_URL": "https://a.example/"})
    assert conf.dry_run is dry
    assert conf.status_callback_url == "https://a.example/whatsapp_status"


async def test_a_restarted_sender_task_leaves_live_calls_alone(store: Store, fake_twilio) -> None:
    rec = SqlRecorder(store)
    await rec.call_started(CallInfo("CA00000000000000000000000000000001", "MZ00000000000000000000000000000001", PHONE, "+97233001122", dt.datetime.now(dt.timezone.utc)))
    await rec.lead_updated("CA00000000000000000000000000000001", PHONE, LeadState(Slots(area="חיפה")))
    await trio.sleep(0.05)  # the call goes quiet for a moment; then the supervisor restarts the task
    async with trio.open_nursery() as nursery:
        await nursery.start(run_outbox_sender, store, cfg(fake_twilio))
        nursery.cancel_scope.cancel()
    [item] = items(store)
    assert item["state"] == "held"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(schema.calls.c.ended_at)).scalar() is None
