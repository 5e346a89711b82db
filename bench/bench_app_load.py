"""Server CPU per call-second, and call quality with many calls at once (`agentlocator load`).

A real server process (`agentlocator serve`) with instant fake providers
(AGENTLOCATOR_TEST_WIRING -> tests.integration.fakes:env_wiring: tone TTS, scripted ASR,
a brain that always answers at length) takes N simultaneous simulated Twilio calls, each
talking, listening and barging in for CALL_S seconds. The callers run in their own processes
(server/caller/load.py, the lean selector shell: a few ms of caller CPU per call-second), so
they neither share the server's event loop nor its core; their own tick lateness is checked.
Measured per step: the server process's CPU (from /proc) per call-second, against the callers'
own CPU per call-second in the same run, plus outbound jitter, late frames, audible gaps,
missing frames, turn latency and caller-heard halt under that load.
Targets (issue 12): server CPU per call-second at 10 calls <= 5 ms (first milestone; the aim is
~2.5 ms), jitter p99 <= 10 ms and halt p99 <= 220 ms at every step.
The Pipecat comparison (issue 12: ratios in one run): the same callers against Pipecat's
pass-through Twilio pipeline (bench/pipecat_twilio.py, in its own environment: `make
pipecat-venv`; PIPECAT_PYTHON overrides where), then ours; target >= 15x less server CPU per
call-second at 10 calls (the milestone of <= 5 ms was ~7x). Skipped when that environment is
missing (`make bench` creates it; `make test` does not install 500 MB for a smoke run). The same
run measures the floor too (bench/floor_twilio.py: trio, raw sockets, one 20 ms tick, no agent —
the least a Python server on trio spends on these callers): ours / floor is what our own design
costs, Pipecat / floor the best ratio any trio server could show against Pipecat on this box.
Bounded and loopback-only.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_app_load.py -s -o addopts="")
"""
from __future__ import annotations

import os

import pytest

from server.caller.load import (HALT_P99_MS, JITTER_P99_MS, FloorServer, OwnServer, PipecatServer, comparison,
                                describe, floor_comparison, pipecat_missing, run_step)
from tests.integration.harness import ROOT

from bench.support import pick, target

STEPS = pick((1, 10, 30), (2,))
CALL_S = pick(25.0, 5.0)
PIPECAT_PYTHON = os.environ.get("PIPECAT_PYTHON") or str(ROOT / "artifacts" / "pipecat-venv" / "bin" / "python")
VS_PIPECAT_CALLS = pick(10, 2)


def test_server_cpu_per_call_second(benchmark) -> None:
    log_path = ROOT / "artifacts" / "bench-load-server.log"

    def run() -> list:
        out = []
        with OwnServer(log_path, max_calls=max(STEPS) + 10) as server:
            for n in STEPS:
                out.append(run_step(server.url, n, CALL_S, server_pid=server.proc.pid, server=server, tag=f"bench{n}"))
        return out

    steps = benchmark.pedantic(run, rounds=1, iterations=1)
    for step in steps:
        print()
        for line in describe(step):
            print(f"[app] {line}")
    for step in steps:
        n = step.calls
        if step.server_cpu_ms_per_call_s is not None and n == 10:
            target("app", "server CPU per call-second at 10 calls (milestone)", step.server_cpu_ms_per_call_s, 5.0, "ms")
        if step.jitter_p99_ms is not None:
            target("app", f"outbound jitter p99 at {n} calls", step.jitter_p99_ms, JITTER_P99_MS, "ms")
        if step.halt_ms.get("p99") is not None:
            target("app", f"caller-heard halt p99 at {n} calls", step.halt_ms["p99"], HALT_P99_MS, "ms")
        if step.caller_bound:
            print(f"[app]   {n} calls: CALLER-BOUND (caller tick lateness p99 {step.caller_tick_late_p99_ms:.1f} ms):"
                  " this step's figures describe the callers as much as the server")
    benchmark.extra_info.update({f"server_cpu_ms_per_call_s@{s.calls}": s.server_cpu_ms_per_call_s for s in steps}
                                | {f"caller_cpu_ms_per_call_s@{s.calls}": s.caller_cpu_ms_per_call_s for s in steps})
    for step in steps:
        assert not step.failed_calls and not step.errors, (step.failed_calls + step.errors)[:5]
        assert step.missing_frames == 0


def test_server_cpu_against_pipecat(benchmark) -> None:
    why = pipecat_missing(PIPECAT_PYTHON)
    if why is not None:
        pytest.skip(f"no Pipecat environment: {why}")
    n = VS_PIPECAT_CALLS

    def run() -> tuple:
        with PipecatServer(PIPECAT_PYTHON, ROOT / "artifacts" / "bench-load-pipecat.log") as server:
            theirs = run_step(server.url, n, CALL_S, server_pid=server.proc.pid, tag=f"pipecat{n}")
        with OwnServer(ROOT / "artifacts" / "bench-load-server.log", max_calls=n + 10) as server:
            ours = run_step(server.url, n, CALL_S, server_pid=server.proc.pid, server=server, tag=f"ours{n}")
        with FloorServer(ROOT / "artifacts" / "bench-load-floor.log") as server:
            floor = run_step(server.url, n, CALL_S, server_pid=server.proc.pid, server=server, tag=f"floor{n}")
        return ours, theirs, floor

    ours, theirs, floor = benchmark.pedantic(run, rounds=1, iterations=1)
    for label, step in (("Pipecat pass-through", theirs), ("ours", ours), ("the floor", floor)):
        print()
        print(f"[app] {label}:")
        for line in describe(step):
            print(f"[app] {line}")
    print(f"[app] {comparison(ours, theirs)}")
    print(f"[app] {floor_comparison(ours, floor)}")
    assert not theirs.failed_calls and not ours.failed_calls, (theirs.failed_calls + ours.failed_calls)[:5]
    a, b, f = ours.server_cpu_ms_per_call_s, theirs.server_cpu_ms_per_call_s, floor.server_cpu_ms_per_call_s
    assert a and b and f, "a server CPU figure is missing"
    # The floor (bench/floor_twilio.py: raw sockets, one tick, no agent) is the least any
    # Python server on trio spends on these callers: Pipecat's / the floor's is the most any
    # such server could show against Pipecat on this box, whatever the 15x target says.
    print(f"[app] Pipecat's / the floor's = {b / f:.1f}x: the best ratio a trio server could reach here; "
          f"15x would need {b / 15:.2f} ms per call-second, the floor spends {f:.2f} ms")
    benchmark.extra_info.update({"ours_ms_per_call_s": a, "pipecat_ms_per_call_s": b, "floor_ms_per_call_s": f,
                                 "ratio": b / a, "ours_over_floor": a / f})
    target("app", f"server CPU per call-second at {n} calls, Pipecat's / ours", b / a, 15.0, "x", at_least=True)
