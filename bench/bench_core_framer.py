"""Framer cost per 20 ms frame: TTS chunks in (odd sizes), 160-byte μ-law frames out.

Baseline, measured in the same run: the obvious pure-Python framer (bytearray + audioop.lin2ulaw
+ slicing off each frame as a new bytes object).
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_core_framer.py -s -o addopts="")
"""
from __future__ import annotations

import os
import time
import warnings

import pytest

from native.framer import Framer

from bench.support import pick

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop", reason="audioop (the baseline) is gone in Python >= 3.13")

# 10 s of TTS in the chunk sizes synthesizers hand out: odd, uneven, some smaller than a frame
SIZES = [4801, 317, 2048, 999, 8191, 160, 77, 6400]
AUDIO = os.urandom(160_000)
CHUNKS: list[bytes] = []
_pos = 0
while _pos < len(AUDIO):
    size = SIZES[len(CHUNKS) % len(SIZES)]
    CHUNKS.append(AUDIO[_pos : _pos + size])
    _pos += size
FRAMES = len(AUDIO) // 2 // 160


def native_framer() -> int:
    f = Framer(1500)
    out = bytearray(160)
    n = 0
    for chunk in CHUNKS:
        f.write_pcm16(chunk)
        while f.read_frame(out):
            n += 1
    f.flush()
    while f.read_frame(out):
        n += 1
    return n


def python_framer() -> int:
    buf = bytearray()
    carry = b""
    n = 0
    for chunk in CHUNKS:
        data = carry + chunk
        even = len(data) & ~1
        carry = data[even:]
        buf += audioop.lin2ulaw(data[:even], 2)
        while len(buf) >= 160:
            frame = bytes(buf[:160])
            del buf[:160]
            n += 1
    if buf:
        frame = bytes(buf) + b"\xff" * (160 - len(buf))
        n += 1
    del frame
    return n


def per_frame_ns(fn) -> float:
    best = float("inf")
    for _ in range(pick(7, 1)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / FRAMES * 1e9


def test_framer_per_frame(benchmark) -> None:
    assert native_framer() == python_framer() == FRAMES
    benchmark.pedantic(native_framer, rounds=5, iterations=1)
    ours = per_frame_ns(native_framer)
    base = per_frame_ns(python_framer)
    benchmark.extra_info.update(ns_per_frame=round(ours, 1), baseline_ns=round(base, 1), ratio=round(base / ours, 2))
    print(
        f"\n[core] framer (encode + frame, odd chunks): {ours:.0f} ns per frame; "
        f"pure-Python bytearray + audioop {base:.0f} ns -> {base / ours:.1f}x"
    )
