"""Listen-in and recording never slow the call: the agent's frame jitter at the caller with
and without someone listening, over real sockets against a server process.

Three calls of the same script on one server (`agentlocator serve`, the test wiring with
instant fake providers and the dashboard; RECORDINGS_DIR set, so every call is recorded):
  - baseline: nobody listens;
  - listening: a client on /api/calls/<sid>/listen reads everything (as the browser does);
  - stalled: a client connects and never reads (its queue stays full, the oldest dropped).
Per call: jitter of agent frame arrivals at the caller |interval - 20 ms| (steady state,
server.caller.analysis), p50 / p99. For the listening call also the listen-in delay: the
caller's first voiced frame leaving the caller -> its record reaching the listener (the
page adds its 300 ms playout buffer: target < 1 s in all).
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_app_listen.py -s -o addopts="")
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile
import trio
import trio_websocket

from native.codec import ulaw_rms
from server.caller.analysis import media_jitter_ms
from server.caller.call import CallIds, PreparedAudio, PreparedHangup, PreparedWait
from server.caller.client import place_call
from server.recording import RECORD
from tests.integration.fakes import tone
from tests.integration.harness import ahttp, server_process

from bench.support import pick, target

TALK_S = pick(12.0, 2.0)  # the agent's long reply the caller listens to
PLAYOUT_S = 0.3  # mulaw.js DELAY_S


def _steps() -> list:  # type: ignore[type-arg]
    voice = np.concatenate([np.zeros(400, np.int16), tone(1000, 220.0, 4000)])
    return [PreparedWait(600, 10.0), PreparedAudio("say", voice, "hello"),
            PreparedAudio("silence", np.zeros(int(8000 * TALK_S), np.int16)), PreparedHangup()]


async def _session(port: int) -> tuple[list[tuple[str, str]], str]:
    status, headers, body = await ahttp("GET", port, "/dashboard")
    assert status == 200
    cookie = {k.lower(): v for k, v in headers.items()}["set-cookie"].split(";")[0]
    csrf = re.search(rb'name="csrf-token" content="([0-9a-f]+)"', body).group(1).decode()
    return [("Cookie", cookie), ("Origin", f"http://127.0.0.1:{port}")], csrf


async def _call(port: int, mode: str) -> dict:
    ids = CallIds()
    started: list[float] = []
    got: dict = {"records": 0, "first_voice_at": None}

    def on_event(event: dict) -> None:
        if event["kind"] == "call_start":  # the caller's clock starts in this tick
            started.append(trio.current_time())

    async def listen() -> None:
        headers, csrf = await _session(port)
        url = f"ws://127.0.0.1:{port}/api/calls/{ids.call_sid}/listen?csrf={csrf}"
        while True:  # until the call is up in the server
            try:
                async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
                    if mode == "stalled":
                        await trio.sleep_forever()
                    while True:
                        message = await ws.get_message()
                        if isinstance(message, str):
                            continue
                        now = trio.current_time()
                        i = 0
                        while i < len(message):
                            channel, pos, size = RECORD.unpack_from(message, i)
                            i += RECORD.size
                            got["records"] += 1
                            if channel == 0 and got["first_voice_at"] is None and \
                                    ulaw_rms(message[i:i + size]) > 1000:
                                got["first_voice_at"] = now
                            i += size
            except trio_websocket.ConnectionRejected:
                await trio.sleep(0.02)
            except trio_websocket.ConnectionClosed:
                return

    async with trio.open_nursery() as nursery:
        if mode != "baseline":
            nursery.start_soon(listen)
        outcome = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", _steps(), ids=ids,
                                   on_event=on_event, max_duration_s=60)
        nursery.cancel_scope.cancel()
    call = outcome.call
    assert not call.errors, call.errors
    jitter = media_jitter_ms([rx.t for rx in call.rx if rx.kind == "media"])
    delay = None
    if got["first_voice_at"] is not None and call.utterances:
        delay = (got["first_voice_at"] - (started[0] + call.utterances[0].onset)) * 1000.0
    return {"sid": ids.call_sid, "jitter": jitter, "records": got["records"], "delay_ms": delay}


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), p)) if values else float("nan")


def test_listen_in_does_not_slow_the_call(benchmark, tmp_path: Path) -> None:
    rec = tmp_path / "recordings"

    async def main() -> dict:
        env = {"AGENTLOCATOR_TEST_WIRING": "tests.integration.fakes:dashboard_wiring",
               "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "RECORDINGS_DIR": str(rec)}
        async with server_process(tmp_path / "server.log", env) as (port, _):
            return {mode: await _call(port, mode) for mode in ("baseline", "listening", "stalled")}

    runs = benchmark.pedantic(lambda: trio.run(main), rounds=1, iterations=1)
    for mode, r in runs.items():
        print(f"\n[app] {mode:9s} agent frame jitter p50 {pct(r['jitter'], 50):.2f} ms  p99 {pct(r['jitter'], 99):.2f} ms"
              f"  ({len(r['jitter'])} frames; listener got {r['records']} records)")
    base, listening, stalled = runs["baseline"], runs["listening"], runs["stalled"]
    assert listening["records"] > 50
    delay = listening["delay_ms"]
    print(f"[app] listen-in delay: caller's voice -> listener {delay:.1f} ms (+ {PLAYOUT_S * 1000:.0f} ms playout in the page)")
    benchmark.extra_info.update({f"{m}_jitter_p99_ms": round(pct(r["jitter"], 99), 2) for m, r in runs.items()})
    benchmark.extra_info.update(listen_delay_ms=round(delay, 1) if delay is not None else None)
    # every call recorded, as long as it ran
    for r in runs.values():
        info = soundfile.info(str(rec / f"{r['sid']}.flac"))
        assert info.channels == 2 and info.duration > TALK_S
    # a listener adds at most 2 ms to the p99 of the baseline (shared 2-core box: noise is ~1 ms)
    target("app", "jitter p99 with a listener - without", pct(listening["jitter"], 99) - pct(base["jitter"], 99), 2.0, "ms")
    target("app", "jitter p99 with a stalled listener - without", pct(stalled["jitter"], 99) - pct(base["jitter"], 99), 2.0, "ms")
    if delay is not None:
        target("app", "listen-in delay incl. the page's playout", delay + PLAYOUT_S * 1000, 1000.0, "ms", hard=True)
