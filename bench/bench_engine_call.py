"""The call engine in REAL time over the in-memory transport (no sockets: only our own path).

One call, 24 barge-ins at varying delays after the agent's audio starts, instant fake
providers (scripted ASR, tone TTS, scripted brain). Measured:
  - trigger -> `clear` on the wire (server BARGE_IN line; target p99 <= 5 ms);
  - caller-heard halt: caller voice onset -> `clear` at the caller (floor: min_voice, what
    the detectors must hear, counted from the real onset; target p99 <= min_voice + 20 ms);
  - turn overhead: EOU -> first agent frame on the wire (target p99 <= 10 ms);
  - outbound frame jitter: |interval - 20 ms| between agent frames in steady state, at the
    moment the pacer hands them to the transport (target p99 <= 2 ms on an idle box), and
    as the emulator task received them (adds its own scheduling).
Baselines from the same run: the cost of one inbound frame through the session (the unit the
halt and turn overheads are counted in) and the jitter of a bare trio.sleep_until loop on the
same deadlines (what the OS + trio give before any of our work).

CPU per call-second: a 120 s call in virtual time (so the CPU used is only the work), the
session + emulator, minus the emulator alone talking to a sink.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_engine_call.py -s -o addopts="")
"""
from __future__ import annotations

import io
import json
import math
import time

import numpy as np
import trio
from trio.testing import MockClock

from native.config import TimingConfig
from telemetry import logs
from server.session import run_call
from tests.server.fakes import ScriptedBrain, ScriptedRecognizer, ToneSynthesizer
from tests.server.harness import Scenario
from tests.server.twilio_emulator import TwilioEmulator

from bench.support import pick, target

BARGES = pick(24, 2)


def pct(values: list[float]) -> dict[int, float]:
    arr = np.asarray(values, dtype=float)
    return {p: float(np.percentile(arr, p)) for p in (50, 95, 99)}


def row(name: str, values: list[float]) -> str:
    r = pct(values)
    return f"[engine]   {name:<44} n={len(values):4d}  p50 {r[50]:7.3f}  p95 {r[95]:7.3f}  p99 {r[99]:7.3f}"


async def _barge_call() -> tuple[list[dict], TwilioEmulator, list[tuple[float, float]]]:
    sc = Scenario(
        recognizer=ScriptedRecognizer([f"utterance {i}" for i in range(BARGES + 2)]),
        brain=ScriptedBrain(),  # "Reply n, anything else?" per turn
        synthesizer=ToneSynthesizer(ms_per_char=pick(100, 60)),  # ~2.3 s replies (smoke ~1.4 s): long enough to interrupt
    )
    sink = io.StringIO()
    logs.configure("INFO", sink)
    voices: list[tuple[float, float]] = []

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.4)
        emu.say(1.0)
        for i in range(BARGES):
            start = await emu.wait_agent_speech(i + 2)
            await emu.sleep_until(start + 0.45 + (i * 0.037) % 0.3 + (i * 0.0031) % 0.02)
            voices.append(emu.say(1.0))
        if pick(True, False):  # smoke: hang up without hearing the last reply out
            await emu.wait_marks(".end", 2)
        await trio.sleep(0.3)

    emu = TwilioEmulator()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(emu.run, script)
        await run_call(emu.transport, sc.deps())
        nursery.cancel_scope.cancel()
    lines = [json.loads(x) for x in sink.getvalue().splitlines()]
    return lines, emu, voices


async def _checkpoint_latency_ms(n: int) -> list[float]:
    """One scheduler pass: what any `await` on the path costs on this box right now."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await trio.lowlevel.checkpoint()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def _bare_sleep_jitter(n: int) -> list[float]:
    t0 = trio.current_time()
    times = []
    for k in range(n):
        await trio.sleep_until(t0 + k * 0.02)
        times.append(time.perf_counter())
    return [abs((b - a) * 1000 - 20.0) for a, b in zip(times, times[1:])]


def _steady_jitter(rx: list[float]) -> list[float]:
    # intervals of 20 ms +- 10 ms: the pacer's lead burst (0 ms) and gaps between replies excluded
    out = []
    for a, b in zip(rx, rx[1:]):
        d = (b - a) * 1000
        if 10.0 <= d <= 30.0:
            out.append(abs(d - 20.0))
    return out


def _per_frame_cost_us() -> float:
    """Baseline unit: one inbound frame through the session's hot path (parse + decode +
    detectors + recognizer push), measured on a live session object."""
    from server.session import CallSession

    async def main() -> float:
        sc = Scenario()
        emu = TwilioEmulator()
        session = CallSession(emu.transport, sc.deps())
        session.recognizer = sc.recognizer
        session.machine.state = session.machine.state.SPEAKING  # barge-in detector path
        frame = '{"event":"media","sequenceNumber":"9","streamSid":"MZ","media":{"track":"inbound","chunk":"9","timestamp":"180","payload":"%s"}}'
        import base64
        payloads = [base64.b64encode(bytes([0xFF - (k % 7)] * 160)).decode() for k in range(50)]
        texts = [frame % p for p in payloads]
        parse, media = session.parser.parse, session.inbound.media

        def on_media(payload: bytes) -> None:
            media(payload, 0.0)
        best = math.inf
        for _ in range(pick(7, 1)):
            t = time.perf_counter()
            for _ in range(pick(20, 1)):
                for text in texts:
                    on_media(parse(text).payload)
            best = min(best, (time.perf_counter() - t) / (pick(20, 1) * len(texts)))
        return best * 1e6

    return trio.run(main)


def test_engine_realtime(benchmark) -> None:
    frame_us = _per_frame_cost_us()
    lines, emu, voices = benchmark.pedantic(lambda: trio.run(_barge_call), rounds=1, iterations=1)
    bare = trio.run(_bare_sleep_jitter, pick(1500, 20))
    tick = trio.run(_checkpoint_latency_ms, pick(5000, 100))
    cfg = TimingConfig()
    barges = [x for x in lines if x["event"] == "BARGE_IN"]
    trig_clear = [x["clear_after_trigger_ms"] for x in barges]
    turn = [x["latency_ms"] for x in lines if x["event"] == "TTS_START" and x.get("latency_ms") is not None]
    heard = []
    for v_start, _ in voices:
        after = [c for c in emu.report.clears if c >= v_start]
        if after:
            heard.append((after[0] - v_start) * 1000)
    jitter = _steady_jitter(emu.transport.media_sent_at)  # send times: our engine only
    jitter_rx = _steady_jitter(emu.report.media_rx)  # arrival at the emulator task, same process
    errors = [x for x in lines if x["event"] == "ERROR"]
    print(f"\n[engine] real-time call over the in-memory transport: {len(barges)} barge-ins, {len(turn)} replies (ms)")
    print(row("trigger -> clear on the wire (server)", trig_clear))
    print(row("caller voice onset -> clear at the caller", heard))
    print(row("EOU -> first frame on the wire (turn overhead)", turn))
    print(row("outbound frame jitter |interval - 20 ms| (sent)", jitter))
    print(row("  same, as the emulator task received them", jitter_rx))
    print(row("baseline: bare sleep_until jitter", bare))
    print(row("baseline: one scheduler pass (checkpoint)", tick))
    print(f"[engine]   baseline: one inbound frame through the session = {frame_us:.1f} us of CPU")
    p_tc, p_turn, p_j, p_b = pct(trig_clear)[99], pct(turn)[99], pct(jitter)[99], pct(bare)[99]
    p_tick = max(pct(tick)[99], 1e-4)
    print(f"[engine]   trigger->clear p99 = {p_tc / p_tick:.1f}x one scheduler pass p99 (target <= 5 ms: "
          f"{'met' if p_tc <= 5 else 'MISSED'})")
    print(f"[engine]   turn overhead p99 = {p_turn / p_tick:.1f}x one scheduler pass p99 (target <= 10 ms: "
          f"{'met' if p_turn <= 10 else 'MISSED'})")
    print(f"[engine]   jitter p99 = {p_j / max(p_b, 1e-3):.2f}x the bare loop's (target <= 2 ms: "
          f"{'met' if p_j <= 2 else 'MISSED'})")
    # The barge-in detector needs min_voice of real voice, counted from the onset the classifier
    # reports (its hysteresis decides whether, not how long); the frame phase takes 0-20 ms off.
    floor = cfg.barge_in_min_voice_ms
    target_ms = floor + 20
    p_heard = pct(heard)[99]
    print(f"[engine]   caller-heard halt p99 / detector floor ({floor} ms) = {p_heard / floor:.3f}x "
          f"(target <= {target_ms} ms: {'met' if p_heard <= target_ms else 'MISSED'})")
    target("engine", "trigger -> clear p99 (in-memory transport)", p_tc, 5, "ms")
    target("engine", "EOU -> first frame p99, instant providers", p_turn, 10, "ms")
    target("engine", "outbound frame jitter p99 (sent)", p_j, 2, "ms")
    target("engine", "caller-heard halt p99 (in-memory transport)", p_heard, target_ms, "ms")
    benchmark.extra_info.update(
        trigger_to_clear_p99_ms=p_tc, turn_overhead_p99_ms=p_turn, jitter_p99_ms=p_j, bare_jitter_p99_ms=p_b,
        frame_us=frame_us, caller_heard_halt_p99_ms=p_heard,
    )
    # Smoke mode (make test, a busy shared box): the call must run without errors; how many of
    # its two barge-ins land in real time is a measurement, like the targets above.
    assert len(barges) >= pick(BARGES - 4, 0) and not errors


async def _cpu_call(seconds: float, with_session: bool) -> float:
    sc = Scenario(recognizer=ScriptedRecognizer([f"u{i}" for i in range(100)]))
    logs.configure("INFO", io.StringIO())

    async def script(emu: TwilioEmulator) -> None:
        while emu.now() < seconds - 5:
            await trio.sleep(3.0)
            emu.say(1.5)
        await emu.sleep_until(seconds)

    emu = TwilioEmulator()
    t = time.process_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(emu.run, script)
        if with_session:
            await run_call(emu.transport, sc.deps())
        else:  # the emulator alone: a sink that reads frames and answers nothing
            with trio.move_on_after(seconds + 1):
                while True:
                    await emu.transport.receive()
        nursery.cancel_scope.cancel()
    return time.process_time() - t


def test_cpu_per_call_second(benchmark) -> None:
    seconds = pick(120.0, 10.0)
    both = benchmark.pedantic(lambda: trio.run(_cpu_call, seconds, True, clock=MockClock(autojump_threshold=0)),
                              rounds=1, iterations=1)
    emu_only = min(trio.run(_cpu_call, seconds, False, clock=MockClock(autojump_threshold=0)) for _ in range(pick(2, 1)))
    engine = max(both - emu_only, 1e-9)
    per_s_ms = engine / seconds * 1000
    print(f"\n[engine] CPU per call-second: {per_s_ms:.2f} ms (= {per_s_ms / 10:.2f}% of one core);"
          f" session+emulator {both:.2f} s, emulator alone {emu_only:.2f} s for a {seconds:.0f} s call"
          f" -> engine/emulator = {engine / emu_only:.2f}x")
    benchmark.extra_info.update(cpu_ms_per_call_second=per_s_ms)
