"""End to end on a real server process: a phone call books a meeting, its WhatsApp summary
goes out as the approved template (the lead never wrote to us), the lead answers
"אפשר להזיז למחר?" over Twilio's signed Messaging webhook, is offered new windows from the
schedule, picks one and confirms; every message of the thread, both ways, is in the API with
its delivery state. Twilio is the local fake REST server (official client); the clock is the
real one, so the windows are read back from the thread rather than written into the test."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa
import trio

from leads import queries, schema
from leads.store import Store
from server.caller.call import CallIds
from server.caller.client import place_call
from server.security import SignatureChecker

TOKEN = "tok-e2e"
TEMPLATE = "HX" + "b" * 32
PHONE = "+972501234567"
ENV = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN,
       "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886", "TWILIO_WHATSAPP_TEMPLATE_SID": TEMPLATE}


async def inbound(port: int, sid_n: int, body: str) -> int:
    from tests.integration.harness import ahttp

    form = {"MessageSid": f"SM{sid_n:032x}", "AccountSid": ENV["TWILIO_ACCOUNT_SID"], "From": f"whatsapp:{PHONE}",
            "To": ENV["TWILIO_WHATSAPP_FROM"], "Body": body, "NumMedia": "0"}
    sig = SignatureChecker(TOKEN).sign(f"http://127.0.0.1:{port}/whatsapp_inbound", form)
    status, _, _ = await ahttp("POST", port, "/whatsapp_inbound", form=form, headers={"X-Twilio-Signature": sig})
    return status


async def wait_sent(fake_twilio, n: int) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(20):
        while len(fake_twilio.messages()) < n:
            await trio.sleep(0.05)


async def test_call_then_whatsapp_reschedule_on_a_real_server(sqlite_url: str, tmp_path: Path, fake_twilio,
                                                             agent_server_mod) -> None:
    mod = agent_server_mod
    env = {**ENV, "TWILIO_API_BASE_URL": fake_twilio.url}
    server = mod.AgentServer(sqlite_url, tmp_path / "server.log", env=env)
    store = Store.open(sqlite_url)
    try:
        url = f"ws://127.0.0.1:{server.port}/ws/twilio-media"
        headers = [("X-Twilio-Signature", SignatureChecker(TOKEN).sign(url, {}))]
        await place_call(url, mod.caller_steps(mod.MEETING_CALL), ids=CallIds(account_sid=ENV["TWILIO_ACCOUNT_SID"]),
                         headers=headers, auth_token=TOKEN, max_duration_s=90)
        await wait_sent(fake_twilio, 1)
        summary = fake_twilio.messages()[0]
        assert summary["ContentSid"] == TEMPLATE and "Body" not in summary  # outside the 24-hour window
        variables = json.loads(summary["ContentVariables"])
        assert variables["1"] == "דני" and "תל אביב" in variables["2"] and "\n" not in variables["2"]
        [lead] = queries.list_leads(store)
        booked = lead["meeting_at"]
        assert lead["status"] == "meeting_booked" and booked

        # a forged webhook changes nothing
        from tests.integration.harness import ahttp
        forged = {"MessageSid": "SM" + "f" * 32, "From": f"whatsapp:{PHONE}", "Body": "הסר"}
        assert (await ahttp("POST", server.port, "/whatsapp_inbound", form=forged,
                            headers={"X-Twilio-Signature": "Zm9yZ2Vk"}))[0] == 403

        assert await inbound(server.port, 1, "אפשר להזיז למחר?") == 200
        await wait_sent(fake_twilio, 2)
        offer = fake_twilio.messages()[1]
        assert "ContentSid" not in offer and offer["Body"].startswith("אין בעיה. מתאים ") and offer["Body"].endswith("?")
        with store.engine.connect() as conn:
            offered = conn.execute(sa.select(schema.whatsapp_threads.c.offered)).scalar()
        assert 2 <= len(offered) <= 3
        assert await inbound(server.port, 2, "הראשון") == 200
        await wait_sent(fake_twilio, 3)
        assert fake_twilio.messages()[2]["Body"].endswith("לקבוע?")
        assert await inbound(server.port, 3, "כן") == 200
        await wait_sent(fake_twilio, 4)
        assert fake_twilio.messages()[3]["Body"].startswith("קבענו ")
        [lead] = queries.list_leads(store)
        first = dt.datetime.fromisoformat(offered[0])
        assert dt.datetime.fromisoformat(lead["meeting_at"]) == first and lead["meeting_at"] != booked
        assert lead["status"] == "meeting_booked" and lead["needs_person"] is False

        # Twilio reports the confirmation delivered: the thread shows it
        thread = queries.lead_messages(store, PHONE)
        sid = thread[-1]["message_sid"]
        params = {"MessageSid": sid, "MessageStatus": "delivered"}
        sig = SignatureChecker(TOKEN).sign(f"http://127.0.0.1:{server.port}/whatsapp_status", params)
        assert (await ahttp("POST", server.port, "/whatsapp_status", form=params,
                            headers={"X-Twilio-Signature": sig}))[0] == 204
        thread = queries.lead_messages(store, PHONE)
        assert [(m["direction"], m.get("kind")) for m in thread] == [
            ("out", "followup"), ("in", None), ("out", "reply"), ("in", None), ("out", "reply"), ("in", None),
            ("out", "reply")]
        assert [m["sent_as"] for m in thread if m["direction"] == "out"] == ["template", "text", "text", "text"]
        assert thread[-1]["state"] == "delivered"
    finally:
        server.stop()
        store.close()
