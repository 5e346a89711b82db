"""Three server processes on one real PostgreSQL, two calls on each; one process is SIGKILLed
mid-call. The other two instances' calls go on untouched to their real end; the killed one's
calls are closed by another instance once its lease expired (not before); every follow-up
goes out exactly once (a fake Twilio REST endpoint counts them).

Each process is the real app (session, Hebrew rule brain, store, outbox sender, store keeper)
with speech stood in for (tests/leads/agent_server.py); the callers are the simulated Twilio
caller over real websockets.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trio

from leads import queries, schema
from leads.store import Store
from server.caller.call import CallIds
from server.caller.client import place_call
from server.security import SignatureChecker

pytestmark = pytest.mark.postgres

LEASE_S = 4.0
TWILIO_ENV = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "tok",
              "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886"}


def outbox(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(schema.outbox).order_by(schema.outbox.c.id)).mappings()]


def log_events(path: Path, event: str) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item.get("event") == event:
                out.append(item)
    return out


async def test_three_instances_one_killed_mid_call(postgres_url: str, tmp_path: Path, fake_twilio: Any,
                                                   agent_server_mod: Any) -> None:
    mod = agent_server_mod
    store = Store(sa.create_engine(postgres_url))  # the test's view of the database: no lease of its own
    servers = []
    try:
        for n in range(3):
            env = {**TWILIO_ENV, "TWILIO_API_BASE_URL": fake_twilio.url, "INSTANCE_ID": f"instance-{n + 1}",
                   "INSTANCE_LEASE_SECONDS": str(LEASE_S), "STORE_JOURNAL_DIR": str(tmp_path / f"journal-{n + 1}")}
            servers.append(mod.AgentServer(postgres_url, tmp_path / f"server-{n + 1}.log", env=env))
        victim = servers[1]
        # Two callers per instance, each its own number (one lead each).
        calls = [(k % 3, CallIds(from_number=f"+97250100000{k}", account_sid=TWILIO_ENV["TWILIO_ACCOUNT_SID"]))
                 for k in range(6)]
        on_victim = {ids.call_sid for n, ids in calls if n == 1}
        others = {ids.call_sid for n, ids in calls if n != 1}
        outcomes: dict[str, Any] = {}

        async def caller(n: int, ids: CallIds) -> None:
            steps = mod.caller_steps(mod.MEETING_CALL, hang_up=n != 1)
            url = f"ws://127.0.0.1:{servers[n].port}/ws/twilio-media"
            signed = [("X-Twilio-Signature", SignatureChecker("tok").sign(url, {}))]  # as Twilio signs the upgrade
            try:
                outcomes[ids.call_sid] = await place_call(url, steps, ids=ids, auth_token="tok", headers=signed,
                                                          max_duration_s=120)
            except Exception as exc:  # noqa: BLE001 - the victim's callers lose their server
                outcomes[ids.call_sid] = exc

        async with trio.open_nursery() as nursery:
            for n, ids in calls:
                nursery.start_soon(caller, n, ids)

            def named() -> set[str]:
                rows = queries.list_calls(store)
                with store.engine.connect() as conn:
                    names = dict(conn.execute(sa.select(schema.leads.c.phone, schema.leads.c.name)).all())
                by_sid = {ids.call_sid: ids.from_number for _, ids in calls}
                return {r["call_sid"] for r in rows if names.get(by_sid.get(r["call_sid"], "")) == "דני כהן"}

            # Mid-call: every call got as far as the caller's name (the second line).
            with trio.fail_after(60):
                while not (on_victim | others) <= await trio.to_thread.run_sync(named):
                    await trio.sleep(0.1)
            victim.kill()  # SIGKILL
            t_kill = time.monotonic()
            # Its calls stay open while its lease may still be valid ...
            await trio.sleep(LEASE_S - LEASE_S / 3 - 0.5)
            rows = {r["call_sid"]: r for r in queries.list_calls(store)}
            assert all(rows[sid]["ended_at"] is None for sid in on_victim)
            # ... then another instance closes them.
            with trio.fail_after(LEASE_S + 10):
                while any(r["ended_at"] is None for r in queries.list_calls(store) if r["call_sid"] in on_victim):
                    await trio.sleep(0.1)
            recovered_after = time.monotonic() - t_kill
            # The other calls go on to their real end, and every follow-up goes out.
            with trio.fail_after(90):
                while len(outcomes) < 6 or [i["state"] for i in outbox(store)].count("sent") < 6:
                    await trio.sleep(0.2)
            await trio.sleep(3 * LEASE_S)  # several keeper and sender passes more: nothing else goes out
            nursery.cancel_scope.cancel()

        rows = {r["call_sid"]: r for r in queries.list_calls(store)}
        for sid in others:  # untouched by the crash next door
            detail = queries.call_detail(store, sid)
            assert detail["close_reason"] in ("agent_hangup", "twilio_stop"), detail["close_reason"]
            assert detail["outcome"] == "meeting_booked"
            caller_said = [t["text"] for t in detail["transcript"] if t["speaker"] == "caller"]
            assert caller_said == mod.MEETING_CALL
            assert not isinstance(outcomes[sid], Exception)
        for sid in on_victim:
            assert (rows[sid]["close_reason"], rows[sid]["outcome"]) == ("server_restart", "interrupted")
        assert LEASE_S - LEASE_S / 3 - 0.5 <= recovered_after <= LEASE_S + 6

        # Every follow-up exactly once: six messages, one per caller, each item sent on its first attempt.
        messages = fake_twilio.messages()
        assert sorted(m["To"] for m in messages) == sorted(f"whatsapp:{ids.from_number}" for _, ids in calls)
        items = outbox(store)
        assert [(i["state"], i["attempts"]) for i in items] == [("sent", 1)] * 6
        by_call = {i["call_sid"]: i for i in items}
        for sid in others:  # the final summary: the meeting is in it
            assert "דני כהן" in by_call[sid]["body"] and "פגישה:" in by_call[sid]["body"]
        for sid in on_victim:  # the last summary stored mid-call: no meeting yet
            assert "דני כהן" in by_call[sid]["body"] and "פגישה:" not in by_call[sid]["body"]
        # Which instance recovered the victim's calls (it says so in its log), and the
        # victim's lease is gone; the survivors' are there.
        recovered = [e for k in (0, 2) for e in log_events(tmp_path / f"server-{k + 1}.log", "STORE")
                     if e.get("state") == "recovered"]
        assert sorted(sid for e in recovered for sid in e["recovered_calls"]) == sorted(on_victim)
        print(f"\nvictim's calls recovered {recovered_after:.1f} s after the kill (lease {LEASE_S} s) by "
              f"{sorted({e['instance'] for e in recovered})}; follow-ups sent {len(messages)}, duplicated 0")
        with store.engine.connect() as conn:
            assert set(conn.execute(sa.select(schema.instances.c.id)).scalars()) == {"instance-1", "instance-3"}
    finally:
        for s in servers:
            s.stop()
        store.engine.dispose()
