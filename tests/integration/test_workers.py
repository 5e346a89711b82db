"""`agentlocator serve --workers 2` as a user runs it: one port, two worker processes, one
SQLite file. Calls placed with the simulated caller (server.caller) on either worker; the
TwiML of a call answered by one worker and its websocket taken by the other (one token
secret, made by the parent); /metrics, whichever worker answers, counts every worker's calls;
the dashboard, on either worker, sees the other's calls, live ones too; a token replayed to
the other worker is refused (the single-use record is shared); SIGTERM: exit 0, run dir gone.

Which worker takes a connection is steered by stopping the other one (tests.integration.procs).
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

import trio

from server.caller.call import CallIds
from server.caller.client import place_call
from tests.security.support import CONNECTED, start_message, try_start

from .harness import admitted_ids, ahttp
from .procs import ServerProc, long_call, metric, short_call


def _one(lines: list[dict], **match: object) -> dict:
    found = [ln for ln in lines if all(ln.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


async def test_two_workers_share_port_metrics_tokens_and_store(tmp_path: Path) -> None:
    # A short lease: the keeper (every third of it) replays a journal soon. Steering by SIGSTOP
    # can stop a worker inside a write transaction; its sibling's write then waits out SQLite's
    # busy timeout and goes to the journal (durable call ends), to land at the next replay.
    server = ServerProc(tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path / 'agent.db'}",
                                   "INSTANCE_LEASE_SECONDS": "3"}, ["--workers", "2"])
    try:
        await server.ready(workers=2)
        pids = server.worker_pids()
        assert len(set(pids)) == 2 and server.proc.pid not in pids
        url = f"ws://127.0.0.1:{server.port}/ws/twilio-media"

        # P: its TwiML (the token) from worker 0, its websocket on worker 1
        with server.only(0):
            ids_p = await admitted_ids(server.port, CallIds())
        with server.only(1), trio.fail_after(60):
            out_p = await place_call(url, short_call(), ids=ids_p)
        # Q: all on worker 0
        with server.only(0), trio.fail_after(60):
            out_q = await place_call(url, short_call(), ids=CallIds())
        for out in (out_p, out_q):
            assert out.call.errors == [] and out.call.problems == [], out.call.errors + out.call.problems
            assert out.figures.summary()["turn_latency_ms"]["n"] == 1
        sid_p, sid_q = ids_p.call_sid, out_q.call.ids.call_sid
        for sid in (sid_p, sid_q):
            await server.line(event="CALL_END", call_sid=sid)
        lines = server.lines()
        assert _one(lines, event="WEBHOOK", path="/twiml", call_sid=sid_p)["worker"] == 0
        assert _one(lines, event="CALL_START", call_sid=sid_p)["worker"] == 1
        assert _one(lines, event="CALL_START", call_sid=sid_q)["worker"] == 0
        assert _one(lines, event="CALL_END", call_sid=sid_p)["reason"] == "twilio_stop"
        assert _one(lines, event="CALL_END", call_sid=sid_q)["reason"] == "twilio_stop"
        startup = [ln for ln in lines if ln.get("event") == "STARTUP" and "ws_hmac_from" in ln]
        assert [ln["worker"] for ln in startup] == [0, 1]
        assert {ln["ws_hmac_from"] for ln in startup} == {"random per server, shared by its 2 workers (local mode)"}

        # /metrics on either worker: both calls
        for index in (0, 1):
            with server.only(index):
                status, _, body = await ahttp("GET", server.port, "/metrics")
            text = body.decode()
            assert status == 200
            assert metric(text, "agentlocator_call_duration_seconds_count") == 2, text
            assert metric(text, "agentlocator_ws_connections_total") == 2
            assert metric(text, "agentlocator_turns_per_call_count") == 2
            assert metric(text, "agentlocator_calls_active") == 0

        # a token replayed to the other worker (and to the same one) is refused
        for ids, other in ((ids_p, 0), (out_q.call.ids, 1)):
            for index in (other, 1 - other):
                with server.only(index):
                    code, _ = await try_start(server.port, [CONNECTED, start_message(ids)])
                assert code == 1008
                refusal = [ln for ln in server.lines() if ln.get("event") == "WS_CLOSE"
                           and ln.get("call_sid") == ids.call_sid and ln.get("reason") == "refused: replay"]
                assert refusal and refusal[-1]["worker"] == index

        # both finished calls are in the store (through the journal if a write met a stopped worker's lock)
        with trio.fail_after(30):
            while True:
                status, _, body = await ahttp("GET", server.port, "/api/calls")
                assert status == 200
                done = {c["call_sid"]: c for c in json.loads(body)}
                if all(done.get(sid, {}).get("close_reason") for sid in (sid_p, sid_q)):
                    break
                await trio.sleep(0.2)

        # the dashboard, on worker 0, sees worker 1's live call and both finished ones
        async with trio.open_nursery() as nursery:
            outcome: dict = {}
            r_ids = CallIds()
            steer = server.only(1)
            steer.__enter__()
            try:
                async def call_r() -> None:
                    outcome["r"] = await place_call(url, long_call(4.0), ids=r_ids)

                nursery.start_soon(call_r)
                await server.line(20, event="CALL_START", call_sid=r_ids.call_sid)
            finally:
                steer.__exit__(None, None, None)
            with trio.fail_after(10):  # (the call's row is written just after its CALL_START line)
                while True:
                    with server.only(0):
                        status, _, body = await ahttp("GET", server.port, "/api/calls")
                    assert status == 200
                    calls = {c["call_sid"]: c for c in json.loads(body)}
                    if r_ids.call_sid in calls:
                        break
                    await trio.sleep(0.1)
            assert calls[r_ids.call_sid]["ended_at"] is None  # live, on worker 1
            assert calls[sid_p]["close_reason"] == calls[sid_q]["close_reason"] == "twilio_stop"
        assert outcome["r"].call.errors == [] and outcome["r"].call.problems == []
        assert _one(server.lines(), event="CALL_START", call_sid=r_ids.call_sid)["worker"] == 1
        assert (await server.line(event="CALL_END", call_sid=r_ids.call_sid))["reason"] == "twilio_stop"

        run_dir = Path(next(ln["run_dir"] for ln in server.lines() if ln.get("run_dir")))
        assert (run_dir / "metrics").is_dir() and (run_dir / "used-calls" / sid_p).exists()
        server.signal(signal.SIGTERM)
        assert await server.exit_code(30) == 0
        assert not run_dir.exists()
        exits = [ln for ln in server.lines() if ln.get("phase") == "worker exited"]
        assert sorted((ln["worker"], ln["code"]) for ln in exits) == [(0, 0), (1, 0)]
    finally:
        server.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_dead_worker_is_replaced_and_workers_die_with_their_parent(tmp_path: Path) -> None:
    # A short lease: the keeper (every third of it) replays a journal soon. Steering by SIGSTOP
    # can stop a worker inside a write transaction; its sibling's write then waits out SQLite's
    # busy timeout and goes to the journal (durable call ends), to land at the next replay.
    server = ServerProc(tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path / 'agent.db'}",
                                   "INSTANCE_LEASE_SECONDS": "3"}, ["--workers", "2"])
    try:
        await server.ready(workers=2)
        first = server.worker_pids()
        import os

        os.kill(first[1], signal.SIGKILL)
        await server.line(event="ERROR", where="workers", worker=1)
        again = await server.line(60, event="STARTUP", worker=1, note="worker serving again")
        assert again["pid"] not in first and server.proc.poll() is None
        assert server.worker_pids() == [first[0], again["pid"]]
        with server.only(0):  # worker 0 went on serving throughout
            assert (await ahttp("GET", server.port, "/health"))[0] == 200
        replacement = [again["pid"]]
        # the replacement serves too: stop worker 0 and ask
        os.kill(first[0], signal.SIGSTOP)
        try:
            assert (await ahttp("GET", server.port, "/health"))[0] == 200
        finally:
            os.kill(first[0], signal.SIGCONT)
        # the supervisor killed outright: its workers do not outlive it (no orphan holds the port)
        server.proc.kill()
        server.proc.wait()
        with trio.fail_after(10):
            while any(_alive(p) for p in (first[0], replacement[0])):
                await trio.sleep(0.1)
    finally:
        server.close()


def test_a_worker_that_cannot_start_stops_the_server_with_one_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    from .harness import ROOT

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("TWILIO_", "OPENAI_", "AGENTLOCATOR_"))}
    env.update({"AGENT_LANGUAGE": "en-US", "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "BRAIN": "bogus"})
    out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", "0",
                          "--workers", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("configuration error") == 1 and "BRAIN" in out.stderr
    env["DATABASE_URL"] = "sqlite:///:memory:"
    out = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", "0",
                          "--workers", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "in-memory one lives in one process" in out.stderr
