"""Graceful drain, as an operator's rolling deploy does it: SIGTERM to a real
`agentlocator serve --workers 2` with live calls, DRAIN_SECONDS=10, SQLite file.

- a live call that ends on its own before the deadline is not touched (the caller hangs up);
- calls still live at the deadline hear the closing line (the agent's goodbye) and are hung
  up by the agent (close reason drain), with their end written and the follow-up queued;
- a call answered just before SIGTERM whose websocket arrives just after is still taken;
- during the drain: /version says draining, /twiml answers the polite busy line (no stream),
  a websocket of a call answered since (a token another instance minted) is refused 1013;
- the parent forwarded SIGTERM to both workers; every process exits 0, once the last call is
  written; the store has every call closed and every follow-up queued: nothing lost.
On SQLite and on the throwaway PostgreSQL (both workers on one database).
"""
from __future__ import annotations

import dataclasses
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import trio

from leads import schema
from server.caller.call import CallIds
from server.caller.client import place_call
from server.calltokens import CallTokens, server_secret
from server.session import goodbye_line
from tests.security.support import CONNECTED, start_message, try_start

from .harness import admitted_ids, ahttp
from .procs import ServerProc, long_call

def _load_pg_fixtures():  # type: ignore[no-untyped-def]
    """tests/leads/conftest.py's throwaway PostgreSQL (as tests/security/test_logs_server.py does)."""
    import importlib.util
    import sys

    name = "agentlocator_drain_leads_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "leads/conftest.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules[name]


_pg = _load_pg_fixtures()
postgres_server, postgres_db, postgres_url = _pg.postgres_server, _pg.postgres_db, _pg.postgres_url

SECRET = "drain-test-secret-0123456789abcdef"  # known to the test: it mints a token as another instance would
DRAIN_S = 10.0


def _heard_rms(call: object, start_s: float, end_s: float) -> float:
    data = call.heard.data[int(start_s * 8000): int(end_s * 8000)].astype(np.float64)  # type: ignore[attr-defined]
    return float(np.sqrt(np.mean(data * data))) if data.size else 0.0


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_sigterm_drains_live_calls_and_loses_nothing(tmp_path: Path, db: str, request: pytest.FixtureRequest) -> None:
    db_url = request.getfixturevalue("postgres_url") if db == "postgres" else f"sqlite:///{tmp_path / 'agent.db'}"
    server = ServerProc(tmp_path, {"DATABASE_URL": db_url, "DRAIN_SECONDS": str(DRAIN_S), "AGENTLOCATOR_SECRET": SECRET},
                        ["--workers", "2"])
    url = f"ws://127.0.0.1:{server.port}/ws/twilio-media"
    outcomes: dict[str, object] = {}
    try:
        await server.ready(workers=2)
        ids_c = await admitted_ids(server.port, CallIds())  # C: answered now, connects after SIGTERM
        ids_a, ids_b = CallIds(), CallIds()

        async def call(name: str, ids: CallIds, steps: list) -> None:
            outcomes[name] = await place_call(url, steps, ids=ids)

        async with trio.open_nursery() as nursery:
            with server.only(1):  # B on worker 1 (a live call on each worker, whatever A does)
                nursery.start_soon(call, "b", ids_b, long_call(60.0))  # still live at the deadline
                assert (await server.line(20, event="CALL_START", call_sid=ids_b.call_sid))["worker"] == 1
            nursery.start_soon(call, "a", ids_a, long_call(3.0))  # hangs up ~5 s after it starts
            await server.line(20, event="CALL_START", call_sid=ids_a.call_sid)
            server.signal(signal.SIGTERM)
            sigterm_at = trio.current_time()
            for index in (0, 1):
                await server.line(10, event="SHUTDOWN", phase="draining", worker=index)
            nursery.start_soon(call, "c", ids_c, long_call(60.0))

            # no new calls
            for _ in range(4):
                status, _, body = await ahttp("GET", server.port, "/version")
                assert status == 200 and b'"draining":true' in body
                assert (await ahttp("GET", server.port, "/health"))[0] == 503
            status, _, body = await ahttp("POST", server.port, "/twiml", form=CallIds().webhook_params())
            twiml = ET.fromstring(body)
            assert status == 200 and twiml.find("Connect") is None
            assert twiml.find("Say") is not None and twiml.find("Hangup") is not None
            await trio.sleep(1.1)  # a token's mint time is known to the second (rounded down, to let calls in)
            late = CallIds()
            bound = {"From": late.from_number, "To": late.to_number}
            token = CallTokens(server_secret(SECRET, None)[0]).mint(late.call_sid, bound)
            params = {"CallSid": late.call_sid, **bound, "token": token}
            code, _ = await try_start(server.port, [CONNECTED, start_message(dataclasses.replace(late, parameters=params))])
            assert code == 1013
            await server.line(10, event="WS_CLOSE", call_sid=late.call_sid, reason="refused: draining")

            end_a = await server.line(15, event="CALL_END", call_sid=ids_a.call_sid)
            a_ended_at = trio.current_time()
            assert end_a["reason"] == "twilio_stop"
            assert a_ended_at - sigterm_at < DRAIN_S  # it ended on its own, before the deadline

            code = await server.exit_code(DRAIN_S + 40)
            exited_at = trio.current_time()
        assert code == 0
        assert exited_at - sigterm_at >= DRAIN_S
        lines = server.lines()
        for ids in (ids_b, ids_c):
            end = next(ln for ln in lines if ln.get("event") == "CALL_END" and ln.get("call_sid") == ids.call_sid)
            assert end["reason"] == "drain"
            said = [ln for ln in lines if ln.get("event") == "TTS_START" and ln.get("call_sid") == ids.call_sid
                    and ln.get("cause") == "drain"]
            assert [ln["text"] for ln in said] == [goodbye_line("en-US")]
        assert not [ln for ln in lines if ln.get("event") == "CALL_END" and ln.get("reason") == "shutdown"]
        assert sorted(ln["worker"] for ln in lines if ln.get("phase") == "drained") == [0, 1]
        assert sorted((ln["worker"], ln["code"]) for ln in lines if ln.get("phase") == "worker exited") == [(0, 0), (1, 0)]

        # the callers: A hung up itself; B and C were hung up by the agent after its closing line
        a, b, c = (outcomes[k] for k in ("a", "b", "c"))
        assert a.call.errors == [] and a.call.problems == []  # type: ignore[attr-defined]
        for out in (b, c):
            call = out.call  # type: ignore[attr-defined]
            assert call.errors == [] and call.close_code == 1000 and call.close_reason == "drain"
            assert call.duration < 60.0
            assert _heard_rms(call, call.duration - 2.5, call.duration) > 300  # the closing line, heard

        # the store: every call closed, every follow-up queued, the goodbye in the transcript
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            calls = {r["call_sid"]: r for r in conn.execute(sa.select(schema.calls)).mappings()}
            outbox = {r["key"]: r for r in conn.execute(sa.select(schema.outbox)).mappings()}
            turns = conn.execute(sa.select(schema.transcripts).order_by(schema.transcripts.c.id)).mappings().all()
        engine.dispose()
        assert set(calls) == {ids_a.call_sid, ids_b.call_sid, ids_c.call_sid}  # the refused ones left nothing
        assert calls[ids_a.call_sid]["close_reason"] == "twilio_stop"
        for ids in (ids_a, ids_b, ids_c):
            row = calls[ids.call_sid]
            assert row["ended_at"] is not None
            assert outbox[f"whatsapp:{ids.call_sid}"]["state"] == "pending"
        for ids in (ids_b, ids_c):
            assert calls[ids.call_sid]["close_reason"] == "drain"
            agent = [t["text"] for t in turns if t["call_sid"] == ids.call_sid and t["speaker"] == "agent"]
            assert agent[-1] == goodbye_line("en-US")
    finally:
        server.close()


async def test_drain_deadline_reuses_the_call_limit_goodbye_in_process() -> None:
    """The same path inside one app (fast): at the drain deadline the session's polite end
    runs (the MAX_CALL_MINUTES goodbye, close reason drain) and Drain.run returns once the
    call is written; while draining /twiml is busy and /version says so."""
    from tests.security.support import new_world, world_server

    world = new_world()
    async with world_server({"DRAIN_SECONDS": "1"}, world) as (app, port, _w):
        out: dict[str, object] = {}

        async def caller() -> None:
            out["call"] = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", long_call(30.0))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller)
            with trio.fail_after(10):
                while not app.gate.active:
                    await trio.sleep(0.02)
            assert (await ahttp("GET", port, "/health"))[0] == 200
            assert app.drain.begin() and not app.drain.begin()
            assert (await ahttp("GET", port, "/health"))[:3:2] == (503, b'{"status":"draining"}')
            _, _, body = await ahttp("GET", port, "/version")
            assert b'"draining":true' in body
            _, _, body = await ahttp("POST", port, "/twiml", form=CallIds().webhook_params())
            assert ET.fromstring(body).find("Connect") is None
            started = trio.current_time()
            with trio.fail_after(20):
                await app.drain.run(app.gate)
            assert trio.current_time() - started >= 1.0
            assert app.drain.closing.is_set() and not app.gate.active
    result = world.results[0]
    assert result.close_reason == "drain" and result.close_code == 1000
    assert world.synthesizer.spoken[-1] == goodbye_line("en-US")
    agent_turns = [e for e in world.recorder.events if e[0] == "turn" and e[1] == "agent"]
    assert agent_turns[-1][2] == goodbye_line("en-US")
    assert world.recorder.ended  # type: ignore[attr-defined]
    assert out["call"].call.close_code == 1000  # type: ignore[attr-defined]
