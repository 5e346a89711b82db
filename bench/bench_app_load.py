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
Bounded and loopback-only.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_app_load.py -s -o addopts="")
"""
from __future__ import annotations

from server.caller.load import HALT_P99_MS, JITTER_P99_MS, OwnServer, describe, run_step
from tests.integration.harness import ROOT

from bench.support import pick, target

STEPS = pick((1, 10, 30), (2,))
CALL_S = pick(25.0, 5.0)


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
