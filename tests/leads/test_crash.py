"""Crash safety: SIGKILL the server mid-call; the lead and its follow-up survive, and the
restarted server closes the call and delivers the follow-up (fake Twilio on loopback)."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import trio

from leads import queries, schema
from leads.store import Store
from server.caller.client import place_call

TWILIO_ENV = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "tok",
              "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886"}


def outbox(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(schema.outbox)).mappings()]


async def test_killed_mid_call_the_lead_and_follow_up_survive(
    sqlite_url: str, tmp_path: Path, fake_twilio, agent_server_mod
) -> None:
    mod = agent_server_mod
    store = Store.open(sqlite_url)
    server = mod.AgentServer(sqlite_url, tmp_path / "server-1.log")
    try:
        async with trio.open_nursery() as nursery:
            async def caller() -> None:
                steps = mod.caller_steps(mod.MEETING_CALL, hang_up=False)
                try:
                    await place_call(f"ws://127.0.0.1:{server.port}/ws/twilio-media", steps, max_duration_s=60)
                except Exception:  # noqa: BLE001 - the server dies under the call: expected
                    pass

            nursery.start_soon(caller)
            with trio.fail_after(45):  # two caller turns in, the name is the second one
                while not any(l["name"] == "דני כהן" for l in await trio.to_thread.run_sync(queries.list_leads, store)):
                    await trio.sleep(0.1)
            server.kill()
            nursery.cancel_scope.cancel()
    finally:
        server.stop()

    [lead] = queries.list_leads(store)
    assert (lead["phone"], lead["area"], lead["rooms"], lead["budget_ils"]) == ("+972501234567", "תל אביב", 3.0, 2_000_000)
    [call] = queries.list_calls(store)
    assert call["ended_at"] is None  # nobody got to close it
    detail = queries.call_detail(store, call["call_sid"])
    assert [t["text"] for t in detail["transcript"] if t["speaker"] == "caller"][:2] == mod.MEETING_CALL[:2]
    [item] = outbox(store)
    assert item["state"] == "held" and "תל אביב" in item["body"]

    # The restarted server closes the crashed call and sends its follow-up exactly once.
    env = {**TWILIO_ENV, "TWILIO_API_BASE_URL": fake_twilio.url}
    server = mod.AgentServer(sqlite_url, tmp_path / "server-2.log", env=env)
    try:
        with trio.fail_after(20):
            while not fake_twilio.messages() or outbox(store)[0]["state"] != "sent":
                await trio.sleep(0.05)
        await trio.sleep(0.3)
    finally:
        server.stop()
    [msg] = fake_twilio.messages()
    assert msg["To"] == "whatsapp:+972501234567" and msg["From"] == "whatsapp:+14155238886"
    assert "תל אביב" in msg["Body"] and "דני כהן" in msg["Body"]
    [call] = queries.list_calls(store)
    assert (call["close_reason"], call["outcome"]) == ("server_restart", "interrupted")
    store.close()
