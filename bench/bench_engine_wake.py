"""What a wake-up costs on this machine: one inbound message's work, hot and right after a sleep.

The per-message work of a call (TwilioParser.parse of a `media` message + Inbound.media: μ-law
decode, the detectors) timed three ways in one run: in a hot loop (the baseline), right after a
20 ms sleep (what a server that wakes per message or per 20 ms tick pays), and a second time
right after that (the cache warm again). On the 2-core shared VM this project is measured on,
the first run after a sleep costs tens of times the hot one, and spinning before it does not
help (not the CPU's clock speed: the caches and predictors were emptied while we slept). It is
why the server's CPU follows its wake-ups more than its work (README, *Speed, third round*),
and why `agentlocator load --floor` (a server that only reads and sends on one tick) already
spends ~3 ms per call-second at 10 calls.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_engine_wake.py -s -o addopts="")
"""
from __future__ import annotations

import base64
import json
import time

import numpy as np

from native.config import TimingConfig
from server import turn as T
from server.inbound import Inbound
from server.twilio_codec import Media, TwilioParser

from bench.support import pick

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
ROUNDS = pick(200, 5)
SLEEP_S = 0.020


def _message_work() -> "callable[[], None]":  # type: ignore[valid-type]
    cfg = TimingConfig()
    payload = bytes(np.random.default_rng(1).integers(0xF0, 0x100, 160, dtype=np.uint8))  # quiet line noise
    text = json.dumps({"event": "media", "sequenceNumber": "4312", "streamSid": SID,
                       "media": {"track": "inbound", "chunk": "4311", "timestamp": "86200",
                                 "payload": base64.b64encode(payload).decode()}})
    parser = TwilioParser()
    parser.stream_sid = SID
    inbound = Inbound(cfg, T.TurnMachine(cfg, "en-US"), lambda ev: None, lambda pcm: None, lambda: 0)

    def work() -> None:
        event = parser.parse(text)
        assert type(event) is Media
        inbound.media(event.payload, 1.0, False)

    return work


def _p50_us(samples: list[int]) -> float:
    return float(np.percentile(np.asarray(samples, dtype=float), 50)) / 1000.0


def test_first_message_after_a_sleep(benchmark) -> None:
    work = _message_work()
    clock = time.perf_counter_ns
    for _ in range(1000):  # hot
        work()
    hot = []
    for _ in range(pick(5000, 50)):
        t = clock()
        work()
        hot.append(clock() - t)
    first, second = [], []

    def after_sleep() -> None:
        for _ in range(ROUNDS):
            time.sleep(SLEEP_S)
            t = clock()
            work()
            m = clock()
            work()
            first.append(m - t)
            second.append(clock() - m)

    benchmark.pedantic(after_sleep, rounds=1, iterations=1)
    h, f, s = _p50_us(hot), _p50_us(first), _p50_us(second)
    print(f"\n[engine] one inbound message's work (parse + Inbound.media), p50: hot {h:.1f} µs; "
          f"first after a {SLEEP_S * 1000:.0f} ms sleep {f:.1f} µs ({f / h:.0f}x hot); the next one {s:.1f} µs")
    benchmark.extra_info.update(hot_us=h, first_after_sleep_us=f, second_after_sleep_us=s, ratio=f / h)
    assert len(first) == ROUNDS and h > 0
