"""Twilio frame codec on the 20 ms hot path, against the obvious stdlib way (baseline, same run).

- build one outbound `media` frame: TwilioFrames.media (preformatted prefix + base64)
  vs json.dumps of the dict with base64 text;
- parse one inbound `media` frame: TwilioParser.parse (msgspec, base64 decoded in the
  decoder) vs json.loads + base64.b64decode.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_engine_codec.py -s -o addopts="")
"""
from __future__ import annotations

import base64
import json
import os
import timeit

from server.twilio_codec import TwilioFrames, TwilioParser

from bench.support import pick

FRAME = os.urandom(160)
SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
FRAMES = TwilioFrames(SID)
INBOUND = json.dumps({
    "event": "media", "sequenceNumber": "4312", "streamSid": SID,
    "media": {"track": "inbound", "chunk": "4311", "timestamp": "86200", "payload": base64.b64encode(FRAME).decode()},
})


def naive_build(frame: bytes) -> str:
    return json.dumps({"event": "media", "streamSid": SID, "media": {"payload": base64.b64encode(frame).decode()}})


def naive_parse(text: str) -> tuple[bytes, int]:
    msg = json.loads(text)
    media = msg["media"]
    return base64.b64decode(media["payload"], validate=True), int(media["timestamp"])


def per_call_ns(fn, arg) -> float:
    timer = timeit.Timer(lambda: fn(arg))
    n = pick(5000, 100)
    return min(timer.repeat(pick(7, 1), n)) / n * 1e9


def report(benchmark, what: str, ours: float, base: float) -> None:
    ratio = base / ours
    print(f"\n[engine] {what}: ours {ours:.0f} ns, stdlib json baseline {base:.0f} ns -> {ratio:.2f}x faster")
    benchmark.extra_info.update(ours_ns=round(ours, 1), baseline_ns=round(base, 1), ratio=round(ratio, 2))


def test_build_media_frame(benchmark) -> None:
    assert json.loads(FRAMES.media(FRAME)) == json.loads(naive_build(FRAME))
    benchmark(FRAMES.media, FRAME)
    report(benchmark, "build media frame", per_call_ns(FRAMES.media, FRAME), per_call_ns(naive_build, FRAME))


def test_parse_media_frame(benchmark) -> None:
    parser = TwilioParser()
    event = parser.parse(INBOUND)
    assert (event.payload, event.timestamp) == naive_parse(INBOUND)
    benchmark(parser.parse, INBOUND)
    report(benchmark, "parse media frame", per_call_ns(parser.parse, INBOUND), per_call_ns(naive_parse, INBOUND))
