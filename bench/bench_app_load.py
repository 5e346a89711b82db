"""Server CPU per call-second, and call quality with several calls at once.

A real server process (`agentlocator serve`) with instant fake providers
(AGENTLOCATOR_TEST_WIRING -> tests.integration.fakes:env_wiring: tone TTS, scripted ASR,
a brain that always answers at length) takes CALLS simultaneous simulated Twilio calls
from this process, each talking, listening and barging in for CALL_S seconds.
Measured: the server process's CPU time (from /proc) per call-second, against the
simulated callers' own CPU per call-second in the same run (they do the mirror-image work:
20 ms frames, μ-law, base64, JSON, playback model), plus frame-arrival jitter, halt times
and protocol errors under that load. Bounded and loopback-only.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_app_load.py -s -o addopts="")
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import trio

from leads.fields import sid_for
from server.caller.call import CallIds, PreparedAudio, PreparedBarge, PreparedHangup, PreparedWait
from server.caller.client import place_call
from tests.integration.fakes import tone
from tests.integration.harness import ROOT, server_process

from bench.support import pick

CALLS = pick(4, 2)
CALL_S = pick(25.0, 6.0)
IDLE_S = pick(5.0, 0.5)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _steps(i: int) -> list:
    def voice(ms: int) -> PreparedAudio:
        return PreparedAudio("say", np.concatenate([np.zeros(300 + 37 * i, np.int16), tone(ms, 200.0 + 20 * i, 4000)]), "v")

    steps: list = [PreparedWait(500, 10.0)]
    t = 3.0
    k = 0
    while t < CALL_S - 4:
        if k % 3 == 2:  # talk, then talk over the reply
            steps += [voice(1200), PreparedBarge(400 + 60 * i, voice(900), 10.0), PreparedWait(400, 10.0)]
            t += 3.0
        else:
            steps += [voice(1200), PreparedWait(400, 10.0)]
        t += 4.0
        k += 1
    steps += [PreparedAudio("silence", np.zeros(8000, np.int16)), PreparedHangup()]
    return steps


def test_server_cpu_per_call_second(benchmark) -> None:
    log_path = ROOT / "artifacts" / "bench-load-server.log"
    log_path.parent.mkdir(exist_ok=True)

    async def main() -> tuple[list, float, float, float]:
        env = {"AGENTLOCATOR_TEST_WIRING": "tests.integration.fakes:env_wiring"}
        async with server_process(log_path, env) as (port, pid):
            idle0 = _cpu_s(pid)
            await trio.sleep(IDLE_S)  # /proc counts in 10 ms ticks: a longer idle window
            idle_cpu_per_s = (_cpu_s(pid) - idle0) / IDLE_S
            results: list = [None] * CALLS

            async def one(i: int) -> None:
                ids = CallIds(call_sid=sid_for("CA", f"load{i}"), stream_sid=sid_for("MZ", f"load{i}"))
                results[i] = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", _steps(i), ids=ids)

            s0, c0 = _cpu_s(pid), time.process_time()
            async with trio.open_nursery() as nursery:
                for i in range(CALLS):
                    nursery.start_soon(one, i)
            return results, _cpu_s(pid) - s0, time.process_time() - c0, idle_cpu_per_s

    outcomes, server_cpu, caller_cpu, idle_cpu_per_s = benchmark.pedantic(lambda: trio.run(main), rounds=1, iterations=1)
    call_seconds = sum(o.call.duration for o in outcomes)
    server_ms = server_cpu / call_seconds * 1000
    caller_ms = caller_cpu / call_seconds * 1000
    jitter = np.concatenate([o.figures.media_jitter_ms for o in outcomes if o.figures.media_jitter_ms] or [np.zeros(1)])
    halts = [h for o in outcomes for h in o.figures.halt_ms]
    errors = [e for o in outcomes for e in o.call.errors + o.call.problems]
    print(f"\n[app] {CALLS} simultaneous calls, {call_seconds:.0f} call-seconds in total:")
    print(f"[app]   server CPU per call-second       {server_ms:7.1f} ms  ({server_ms / 10:.1f}% of a core per call)")
    print(f"[app]   simulated-caller CPU (baseline)  {caller_ms:7.1f} ms  -> server/caller = {server_ms / caller_ms:.2f}x")
    print(f"[app]   idle server CPU                  {idle_cpu_per_s * 1000:7.1f} ms per second")
    print(f"[app]   frame arrival jitter at callers  p50 {np.percentile(jitter, 50):.2f}  p99 {np.percentile(jitter, 99):.2f}  max {jitter.max():.2f} ms")
    if halts:
        print(f"[app]   caller-heard halt under load     p50 {np.percentile(halts, 50):.1f}  p99 {np.percentile(halts, 99):.1f} ms (n={len(halts)})")
    print(f"[app]   protocol errors                  {len(errors)}")
    benchmark.extra_info.update({"server_cpu_ms_per_call_s": round(server_ms, 2), "caller_cpu_ms_per_call_s": round(caller_ms, 2)})
    assert not errors, errors[:5]
    assert all(o.call.close_code == 1000 for o in outcomes)
