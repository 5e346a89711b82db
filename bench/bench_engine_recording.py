"""What recording a call costs, per second of call (server.recording).

- the hot path: the two taps per 20 ms (a caller and an agent frame into the tape), against
  the inbound frame's own decode (native decode_with_energy, the baseline, same run);
- the encoder thread: a minute of a call (speech-like tones on both sides, silence between)
  flushed in FLUSH_S blocks and written as stereo FLAC through libsndfile, CPU per
  call-second; against writing the same audio as an uncompressed WAV (baseline, same run);
  and the file size per minute.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_engine_recording.py -s -o addopts="")
"""
from __future__ import annotations

import time
import timeit
from pathlib import Path

import numpy as np
import soundfile

from native.codec import decode_with_energy, pcm16_to_ulaw, ulaw_to_pcm16
from server.recording import FLUSH_S, CallTape, Recordings, _Encoder

from bench.support import pick, target

CALL_S = pick(60, 6)


def _side(seconds: int, freq: float, offset_s: float) -> bytes:
    """Talk 2 s, listen 2 s, ... (the other side offset), as μ-law."""
    t = np.arange(seconds * 8000) / 8000.0
    talking = ((t + offset_s) % 4.0) < 2.0
    rng = np.random.default_rng(3)
    pcm = np.where(talking, 3000 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)), 0)
    pcm = (pcm + rng.normal(0, 30, len(t))).astype("<i2")
    return pcm16_to_ulaw(pcm.tobytes())


def test_recording_hot_path_taps(benchmark) -> None:
    tape = CallTape("CA" + "0" * 32, t0=0.0)
    frame = _side(1, 300.0, 0.0)[:160]
    pcm = bytearray(320)
    state = {"t": 0}

    def taps() -> None:
        t = state["t"]
        tape.caller(t, frame, t / 1000.0)
        tape.agent(float(t), frame)
        state["t"] = t + 20
        if len(tape._caller) > 8000 * 10:  # what run() does every FLUSH_S, outside the timing
            tape._take(tape.caller_end - 8000)

    n = pick(20000, 200)
    ours = min(timeit.repeat(taps, number=n, repeat=pick(5, 1))) / n * 1e9
    base = min(timeit.repeat(lambda: decode_with_energy(frame, pcm), number=n, repeat=pick(5, 1))) / n * 1e9
    benchmark.pedantic(taps, rounds=1, iterations=1)
    print(f"\n[engine] recording taps per 20 ms (caller + agent frame): {ours:.0f} ns; "
          f"the inbound frame's decode (baseline) {base:.0f} ns -> {ours / base:.2f}x")
    benchmark.extra_info.update(taps_ns=round(ours), decode_ns=round(base), ratio=round(ours / base, 2))
    # per second of call: 50 x the taps; under 0.01 % of a core
    target("engine", "recording taps per call-second", ours * 50 / 1e3, 100.0, "µs")


def test_recording_encoder_cpu_per_call_second(benchmark, tmp_path: Path) -> None:
    caller, agent = _side(CALL_S, 220.0, 0.0), _side(CALL_S, 330.0, 2.0)
    block = int(FLUSH_S * 8000)

    def flac(i: int) -> float:
        rec = Recordings(tmp_path)
        final = rec.path(f"CA{i:032x}")
        enc = _Encoder(final.with_name(final.name + ".part"), final)
        started = time.process_time()
        for k in range(0, len(caller), block):
            enc.write(caller[k:k + block], agent[k:k + block])
        enc.close()
        return time.process_time() - started

    def wav(i: int) -> float:
        started = time.process_time()
        with soundfile.SoundFile(str(tmp_path / f"{i}.wav"), "w", 8000, 2, "PCM_16", format="WAV") as f:
            for k in range(0, len(caller), block):
                stereo = np.empty((len(caller[k:k + block]), 2), np.int16)
                stereo[:, 0] = np.frombuffer(ulaw_to_pcm16(caller[k:k + block]), np.int16)
                stereo[:, 1] = np.frombuffer(ulaw_to_pcm16(agent[k:k + block]), np.int16)
                f.write(stereo)
        return time.process_time() - started

    rounds = pick(5, 1)
    ours = min(flac(i) for i in range(rounds)) / CALL_S * 1000.0
    base = min(wav(i) for i in range(rounds)) / CALL_S * 1000.0
    benchmark.pedantic(lambda: flac(99), rounds=1, iterations=1)
    size = (tmp_path / f"CA{0:032x}.flac").stat().st_size
    raw = CALL_S * 8000 * 2 * 2
    print(f"\n[engine] recording encoder: {ours:.3f} ms CPU per call-second (FLAC, stereo 8 kHz); "
          f"uncompressed WAV baseline {base:.3f} ms -> {ours / base:.2f}x; "
          f"{size / CALL_S * 60 / 1e6:.2f} MB per minute ({100 * size / raw:.0f} % of PCM, "
          f"{100 * size / (raw / 2):.0f} % of the μ-law)")
    benchmark.extra_info.update(flac_cpu_ms_per_s=round(ours, 4), wav_cpu_ms_per_s=round(base, 4),
                                mb_per_minute=round(size / CALL_S * 60 / 1e6, 3))
    # a 2-core box runs ~40 calls (README Load): recording all of them must stay under 1 % of a core
    target("engine", "recording encoder CPU per call-second", ours, 0.25, "ms")
