"""Where Numba earns its place: whole-recording kernels vs numpy and Cython, and why it stays
off the 20 ms path (dispatch per call). Baselines measured in the same run, each the fastest
plain-numpy way we know (float64 einsum, np.take, a vectorised 2x linear upsample); the
slower obvious ways (int64 einsum, fancy indexing, np.interp) are shown next to them.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_core_batch.py -s -o addopts="")
"""
from __future__ import annotations

import os
import time

import numpy as np

from native import batch, codec

from bench.support import pick

SECONDS = pick(60, 2)
PCM = np.random.default_rng(5).normal(0, 3000, 8000 * SECONDS).clip(-32768, 32767).astype(np.int16)
ULAW = os.urandom(8000 * SECONDS)
FRAMES = len(PCM) // 160
batch.warm_up()
TABLE = batch.ulaw_table()


def best_s(fn, repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(pick(repeat, 1)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def numpy_rms_float(pcm: np.ndarray) -> np.ndarray:
    n = pcm.shape[0] // 160
    x = pcm[: n * 160].reshape(n, 160).astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", x, x) / 160)


def numpy_upsample2(x: np.ndarray) -> np.ndarray:
    """Linear 2x upsampling, vectorised: the samples, and the midpoints between them."""
    xf = x.astype(np.float32)
    y = np.empty(2 * xf.shape[0], dtype=np.float32)
    y[0::2] = xf
    y[1:-1:2] = 0.5 * (xf[:-1] + xf[1:])
    y[-1] = xf[-1]
    return y


def line(what: str, secs: float, base: float, base_name: str) -> str:
    return f"[core]   {what:<44} {secs * 1e6:9.0f} µs  ({base / secs:5.1f}x vs {base_name})"


def test_frame_rms_whole_recording(benchmark) -> None:
    out = np.empty(FRAMES)
    cython_batch = lambda: codec.pcm16_frame_rms_into(PCM, out)  # noqa: E731
    mv = memoryview(PCM.tobytes())
    cython_loop = lambda: [codec.pcm16_rms(mv[320 * i : 320 * i + 320]) for i in range(FRAMES)]  # noqa: E731
    ref = batch.frame_rms_numpy(PCM)
    cython_batch()
    assert np.array_equal(batch.frame_rms(PCM), ref) and np.array_equal(out, ref)
    assert np.allclose(numpy_rms_float(PCM), ref, rtol=1e-12)
    benchmark(batch.frame_rms, PCM)
    base = best_s(lambda: numpy_rms_float(PCM))
    rows = {
        "numpy (reshape, float64 einsum)": base,
        "numpy (reshape, int64 einsum: exact, slower)": best_s(lambda: batch.frame_rms_numpy(PCM)),
        "Numba @njit loop": best_s(lambda: batch.frame_rms(PCM)),
        "Cython batch (pcm16_frame_rms_into)": best_s(cython_batch),
        "Cython per-frame calls (pcm16_rms)": best_s(cython_loop, 3),
    }
    print(f"\n[core] frame RMS over {SECONDS} s ({FRAMES} frames):")
    for k, v in rows.items():
        print(line(k, v, base, "numpy"))
    benchmark.extra_info.update({k: round(v * 1e6, 1) for k, v in rows.items()})


def test_ulaw_decode_whole_recording(benchmark) -> None:
    arr = np.frombuffer(ULAW, dtype=np.uint8)
    assert batch.ulaw_decode(arr, TABLE).tobytes() == codec.ulaw_to_pcm16(ULAW) == np.take(TABLE, arr).tobytes()
    benchmark(batch.ulaw_decode, arr, TABLE)
    base = best_s(lambda: np.take(TABLE, arr))
    rows = {
        "numpy np.take(table, u)": base,
        "numpy fancy indexing table[u] (slower)": best_s(lambda: TABLE[arr]),
        "Numba @njit table loop": best_s(lambda: batch.ulaw_decode(arr, TABLE)),
        "Cython ulaw_to_pcm16 (AVX2)": best_s(lambda: codec.ulaw_to_pcm16(ULAW)),
    }
    print(f"\n[core] μ-law decode of {SECONDS} s:")
    for k, v in rows.items():
        print(line(k, v, base, "numpy"))
    benchmark.extra_info.update({k: round(v * 1e6, 1) for k, v in rows.items()})


def test_per_frame_dispatch(benchmark) -> None:
    """One 20 ms frame per call, as on the live path: Numba's dispatch vs a Cython call."""
    frame = PCM[:160].copy()
    out = np.empty(1)
    fb = frame.tobytes()
    n = pick(20000, 200)

    def numba_calls() -> None:
        for _ in range(n):
            batch._frame_rms(frame, 160, out)

    def cython_calls() -> None:
        for _ in range(n):
            codec.pcm16_rms(fb)

    benchmark.pedantic(cython_calls, rounds=3, iterations=1)
    nb = best_s(numba_calls, 5) / n * 1e9
    cy = best_s(cython_calls, 5) / n * 1e9
    benchmark.extra_info.update(numba_ns=round(nb, 1), cython_ns=round(cy, 1))
    print(f"\n[core] RMS of one frame per call: Cython {cy:.0f} ns, Numba {nb:.0f} ns -> Cython {nb / cy:.1f}x faster")


def test_resample_8k_to_16k(benchmark) -> None:
    """Whisper wants 16 kHz. soxr (C, band-limited HQ) against numpy / Numba linear
    interpolation, which are cheaper to write but leave the 4-8 kHz images in. A Numba kernel
    only pays if it beats soxr at equal quality; this row shows there is nothing to win."""
    import numba
    import soxr

    @numba.njit(cache=False)
    def upsample2_linear(x: np.ndarray) -> np.ndarray:
        y = np.empty(2 * x.shape[0], dtype=np.float32)
        for i in range(x.shape[0] - 1):
            y[2 * i] = x[i]
            y[2 * i + 1] = 0.5 * (np.float32(x[i]) + np.float32(x[i + 1]))
        y[-2] = x[-1]
        y[-1] = x[-1]
        return y

    upsample2_linear(PCM[:16])
    assert np.allclose(numpy_upsample2(PCM[:1000]), upsample2_linear(PCM[:1000]))
    grid = np.arange(2 * len(PCM)) / 2
    src = np.arange(len(PCM))
    benchmark(soxr.resample, PCM, 8000, 16000, "HQ")
    base = best_s(lambda: soxr.resample(PCM, 8000, 16000, quality="HQ"))
    rows = {
        "soxr HQ (band-limited)": base,
        "numpy vectorised linear upsample": best_s(lambda: numpy_upsample2(PCM)),
        "numpy np.interp (linear, slower)": best_s(lambda: np.interp(grid, src, PCM)),
        "Numba @njit linear": best_s(lambda: upsample2_linear(PCM)),
    }
    print(f"\n[core] resample 8 kHz -> 16 kHz, {SECONDS} s:")
    for k, v in rows.items():
        print(line(k, v, base, "soxr"))
    benchmark.extra_info.update({k: round(v * 1e6, 1) for k, v in rows.items()})
