"""Per-frame cost of the voice decisions: our echo guard + classifier + EOU + barge-in against
webrtcvad and Silero (the ONNX model that faster-whisper ships, run with onnxruntime), measured in
the same run.

Like for like: webrtcvad decides from a frame's PCM, so ours starts from the same PCM frame too
(pcm16_rms, then the detectors); the detectors alone on a precomputed level are shown as well,
labelled as such. The inbound-path row starts both sides from the μ-law frame off the wire.

Target (issue 3): VAD + EOU + barge-in <= 1 µs per 20 ms frame, called from Python — with the
echo guard (EchoGuard.played for the outbound frame, EchoGuard.level and EchoGuard.learn for the
inbound one) in it.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_core_vad.py -s -o addopts="")
"""
from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from native import codec
from native.config import TimingConfig
from native.vad import BargeInDetector, EchoGuard, EouDetector, FrameClassifier

from bench.support import pick, target

N = 3000  # 60 s of frames
RESULTS: dict[str, float] = {}


def speechlike_ulaw(seconds: int = 60, seed: int = 3) -> bytes:
    """Noise with 0.3-3 s bursts of a harmonic 'voice' at random levels: the detectors take
    every branch (onsets, drops, silences, forced ends)."""
    rng = np.random.default_rng(seed)
    n = 8000 * seconds
    x = rng.normal(0, 15, n)
    t = np.arange(n) / 8000
    pos = 8000
    while pos < n:
        length = int(rng.uniform(0.3, 3.0) * 8000)
        amp = rng.uniform(300, 4000)
        seg = slice(pos, min(n, pos + length))
        x[seg] += amp * (np.sin(2 * np.pi * 140 * t[seg]) + 0.5 * np.sin(2 * np.pi * 420 * t[seg]))
        pos += length + int(rng.uniform(0.2, 2.0) * 8000)
    return codec.pcm16_to_ulaw(np.clip(x, -32768, 32767).astype("<i2").tobytes())


ULAW = speechlike_ulaw()
PCM = codec.ulaw_to_pcm16(ULAW)
FRAMES_U = [ULAW[160 * i : 160 * i + 160] for i in range(N)]
FRAMES_PCM = [PCM[320 * i : 320 * i + 320] for i in range(N)]
RMS = [codec.pcm16_rms(f) for f in FRAMES_PCM]
# the agent's outbound frames (another speech-like signal), reported 100 ms ahead as the pacer does
AHEAD = 5
_AGENT = codec.ulaw_to_pcm16(speechlike_ulaw(seed=11))
AGENT_RMS = [codec.pcm16_rms(_AGENT[320 * i : 320 * i + 320]) for i in range(N)] + [0.0] * AHEAD


def plain_detectors_loop(frames: list[bytes] | None = FRAMES_PCM) -> int:
    """The three detectors without the echo guard (the cost before it existed), from each
    frame's PCM (``frames``) or, with None, on the precomputed levels."""
    cfg = TimingConfig()
    c, e, b = FrameClassifier(cfg), EouDetector(cfg), BargeInDetector(cfg)
    cu, eu, bu, rms = c.update, e.update, b.update, codec.pcm16_rms
    b.arm(0)
    events = 0
    t = 0
    for x in (frames if frames is not None else RMS):
        r = rms(x) if frames is not None else x
        v = cu(r, t)
        events += eu(v, r, t, c)
        if bu(v, t, c):
            b.arm(t)
        t += 20
    return events


def detectors_loop(frames: list[bytes] | None = FRAMES_PCM) -> int:
    """Per frame: the inbound frame's level from its PCM (as webrtcvad starts from PCM; None:
    the precomputed levels), the agent's outbound frame to the echo guard, its level for the
    inbound frame, the classifier, the guard learning from the classified frame, then EOU +
    barge-in."""
    cfg = TimingConfig()
    c, e, b, g = FrameClassifier(cfg), EouDetector(cfg), BargeInDetector(cfg), EchoGuard(cfg)
    cu, eu, bu, gp, gl, gn = c.update, e.update, b.update, g.played, g.level, g.learn
    rms = codec.pcm16_rms
    b.arm(0)
    events = 0
    t = 0
    ahead = 20 * AHEAD
    agent = AGENT_RMS
    for i, x in enumerate(frames if frames is not None else RMS):
        r = rms(x) if frames is not None else x
        gp(agent[i + AHEAD], t + ahead)
        v = cu(r, t, gl(t))
        gn(r, t, v, c.threshold)
        events += eu(v, r, t, c)
        if bu(v, t, c):
            b.arm(t)
        t += 20
    return events


# a speakerphone line: the inbound frames are the agent's echo (-20 dB, 120 ms) over noise, so every
# frame the agent reaches is evidence for the echo delay and the gate runs narrowed to it: the
# guard's most expensive case
ECHO_LAG = 6
_AGENT_I16 = np.frombuffer(_AGENT, dtype="<i2").astype(np.float64)
_ECHO = np.concatenate([np.zeros(160 * ECHO_LAG), 0.1 * _AGENT_I16[: len(_AGENT_I16) - 160 * ECHO_LAG]])
_ECHO += np.random.default_rng(17).normal(0, 15, len(_ECHO))
ECHO_PCM = np.clip(_ECHO, -32768, 32767).astype("<i2").tobytes()
ECHO_FRAMES = [ECHO_PCM[320 * i : 320 * i + 320] for i in range(N)]


def echo_line_loop() -> tuple[EchoGuard, int]:
    cfg = TimingConfig()
    c, e, b, g = FrameClassifier(cfg), EouDetector(cfg), BargeInDetector(cfg), EchoGuard(cfg)
    cu, eu, bu, gp, gl, gn = c.update, e.update, b.update, g.played, g.level, g.learn
    b.arm(0)
    events = 0
    t = 0
    ahead = 20 * AHEAD
    agent = AGENT_RMS
    rms = codec.pcm16_rms
    for i, f in enumerate(ECHO_FRAMES):
        r = rms(f)  # from the frame's PCM, as webrtcvad
        gp(agent[i + AHEAD], t + ahead)
        v = cu(r, t, gl(t))
        gn(r, t, v, c.threshold)
        events += eu(v, r, t, c)
        if bu(v, t, c):
            b.arm(t)
        t += 20
    return g, events


def inbound_loop() -> int:
    """The whole per-frame work: decode + RMS into a reused buffer, the echo guard (the agent's
    frame in, the level out), then the decisions."""
    cfg = TimingConfig()
    c, e, b, g = FrameClassifier(cfg), EouDetector(cfg), BargeInDetector(cfg), EchoGuard(cfg)
    cu, eu, bu, dec, gp, gl, gn = c.update, e.update, b.update, codec.decode_with_energy, g.played, g.level, g.learn
    pcm = bytearray(320)
    b.arm(0)
    events = 0
    t = 0
    ahead = 20 * AHEAD
    agent = AGENT_RMS
    for i, f in enumerate(FRAMES_U):
        gp(agent[i + AHEAD], t + ahead)
        r = dec(f, pcm)
        v = cu(r, t, gl(t))
        gn(r, t, v, c.threshold)
        events += eu(v, r, t, c)
        bu(v, t, c)
        t += 20
    return events


def per_frame_us(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(pick(repeat, 1)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / N * 1e6


def report(benchmark, key: str, what: str, us: float, baseline_key: str | None = None) -> None:
    RESULTS[key] = us
    line = f"\n[core] {what}: {us * 1000:.0f} ns per 20 ms frame"
    if baseline_key:
        base = RESULTS.get(baseline_key) or measure_baseline(baseline_key)
        line += f"; {baseline_key} {base * 1000:.0f} ns -> ours is {base / us:.1f}x faster"
        benchmark.extra_info["ratio_vs_" + baseline_key] = round(base / us, 2)
    benchmark.extra_info["ns_per_frame"] = round(us * 1000, 1)
    print(line)


def webrtc_loop() -> int:
    import webrtcvad

    vad = webrtcvad.Vad(2)
    n = 0
    for f in FRAMES_PCM:
        n += vad.is_speech(f, 8000)
    return n


def measure_baseline(key: str) -> float:
    if key == "webrtcvad":
        RESULTS[key] = per_frame_us(webrtc_loop)
    return RESULTS[key]


def test_detectors_per_frame(benchmark) -> None:
    """pcm16_rms + EchoGuard.played + EchoGuard.level + FrameClassifier + EchoGuard.learn +
    EouDetector + BargeInDetector: seven Python->Cython calls per frame, from the frame's PCM
    as webrtcvad gets it."""
    pytest.importorskip("webrtcvad")
    assert detectors_loop() > 0  # the signal does produce onsets and ends
    assert detectors_loop() == detectors_loop(None)  # the same decisions from PCM and from the levels
    benchmark.pedantic(detectors_loop, rounds=5, iterations=1)
    us = per_frame_us(detectors_loop)
    report(benchmark, "ours", "from PCM: RMS + echo guard + VAD + EOU + barge-in (target <= 1000 ns)", us, "webrtcvad")
    plain = per_frame_us(plain_detectors_loop)
    given = per_frame_us(lambda: detectors_loop(None))
    plain_given = per_frame_us(lambda: plain_detectors_loop(None))
    benchmark.extra_info.update(ns_per_frame_without_echo_guard=round(plain * 1000, 1),
                                ns_per_frame_level_given=round(given * 1000, 1),
                                ns_per_frame_level_given_without_echo_guard=round(plain_given * 1000, 1))
    print(f"[core] from PCM without the echo guard (RMS + VAD + EOU + barge-in): {plain * 1000:.0f} ns per frame")
    print(f"[core] the detectors alone, the level precomputed (not like for like with webrtcvad): "
          f"{given * 1000:.0f} ns with the echo guard, {plain_given * 1000:.0f} ns without")
    target("core", "RMS + echo guard + VAD + EOU + barge-in per frame, from PCM", us * 1000, 1000, "ns")


def test_detectors_per_frame_on_an_echo_line(benchmark) -> None:
    """The same six calls on a speakerphone line, where the echo guard learns the delay from every
    frame and gates at it: its worst case."""
    g, events = echo_line_loop()
    assert g.delay_ms == 20 * ECHO_LAG and events == 0  # learned, and the echo alone is no utterance
    benchmark.pedantic(echo_line_loop, rounds=5, iterations=1)
    us = per_frame_us(echo_line_loop)
    report(benchmark, "echo_line", "echo line, from PCM (the delay learned from every frame) + VAD + EOU + barge-in",
           us, "webrtcvad")
    target("core", "the same on an echo line (the guard's worst case), from PCM", us * 1000, 1000, "ns")


def test_inbound_path_per_frame(benchmark) -> None:
    """decode_with_energy + the three detectors, against audioop decode + webrtcvad."""
    benchmark.pedantic(inbound_loop, rounds=5, iterations=1)
    us = per_frame_us(inbound_loop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    import webrtcvad

    def baseline() -> None:
        vad = webrtcvad.Vad(2)
        for f in FRAMES_U:
            vad.is_speech(audioop.ulaw2lin(f, 2), 8000)

    RESULTS["audioop+webrtcvad"] = per_frame_us(baseline)
    report(benchmark, "inbound", "inbound path: decode + RMS + echo guard + VAD + EOU + barge-in", us, "audioop+webrtcvad")


def test_webrtcvad_per_frame(benchmark) -> None:
    pytest.importorskip("webrtcvad")
    benchmark.pedantic(webrtc_loop, rounds=5, iterations=1)
    us = measure_baseline("webrtcvad")
    report(benchmark, "webrtcvad", "webrtcvad (mode 2, 20 ms at 8 kHz)", us)


def silero_path() -> Path | None:
    try:
        import faster_whisper
    except ImportError:
        return None
    p = Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"
    return p if p.exists() else None


def test_silero_per_frame(benchmark) -> None:
    """Silero VAD v6 as faster-whisper ships it (16 kHz, 512-sample windows = 32 ms), one
    streaming window per run as a live call would need; cost scaled to 20 ms of audio."""
    path = silero_path()
    if path is None:
        pytest.skip("faster-whisper's bundled Silero model is not installed")
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=opts)
    pcm16k = np.repeat(np.frombuffer(PCM, dtype=np.int16), 2).astype(np.float32) / 32768.0
    windows = pcm16k[: (len(pcm16k) // 512) * 512].reshape(-1, 512)[: pick(200, 5)]
    h = np.zeros((1, 1, 128), dtype=np.float32)
    c = np.zeros((1, 1, 128), dtype=np.float32)
    ctx = np.zeros((1, 64), dtype=np.float32)

    def run() -> None:
        nonlocal h, c, ctx
        for w in windows:
            x = np.concatenate([ctx, w[None, :]], axis=1)
            _, h, c = sess.run(None, {"input": x, "h": h, "c": c})
            ctx = x[:, -64:]

    benchmark.pedantic(run, rounds=3, iterations=1)
    best = min(_timed(run) for _ in range(pick(3, 1)))
    us = best / len(windows) * (20 / 32) * 1e6
    report(benchmark, "silero", f"Silero v6 ONNX (onnxruntime {ort.__version__}, 1 thread)", us)
    ours = RESULTS.get("ours")
    if ours:
        print(f"[core] Silero / ours per frame: {us / ours:.0f}x")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":  # quick look without pytest
    print(os.path.basename(__file__), per_frame_us(detectors_loop) * 1000, "ns/frame")
