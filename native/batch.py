"""Whole-recording kernels in Numba, for offline analysis (the VAD evaluation, benchmarks).

Numba earns its place here and only here: over a whole recording one dispatch is amortised
over thousands of frames and the loop compiles to the same code as Cython's, without numpy's
temporaries. On the 20 ms path a Numba call costs a few hundred ns of dispatch per frame —
more than the Cython kernel's whole work — so the live path stays in native/codec.pyx and
native/vad.pyx (bench/bench_core_batch.py measures both).
"""
from __future__ import annotations

import numba
import numpy as np

from native.config import FRAME_SAMPLES


@numba.njit(cache=True, nogil=True)
def _frame_rms(samples: np.ndarray, frame: int, out: np.ndarray) -> None:
    for i in range(out.shape[0]):
        acc = 0
        base = i * frame
        for j in range(frame):
            v = np.int64(samples[base + j])
            acc += v * v
        out[i] = np.sqrt(acc / frame)


def frame_rms(samples: np.ndarray, frame_samples: int = FRAME_SAMPLES) -> np.ndarray:
    """RMS of each whole frame of an int16 recording (a trailing partial frame is ignored)."""
    samples = np.ascontiguousarray(samples, dtype=np.int16)
    out = np.empty(samples.shape[0] // frame_samples, dtype=np.float64)
    _frame_rms(samples, frame_samples, out)
    return out


def frame_rms_numpy(samples: np.ndarray, frame_samples: int = FRAME_SAMPLES) -> np.ndarray:
    """The same with numpy vector operations (the comparison baseline)."""
    n = samples.shape[0] // frame_samples
    x = samples[: n * frame_samples].reshape(n, frame_samples).astype(np.int64)
    return np.sqrt(np.einsum("ij,ij->i", x, x) / frame_samples)


@numba.njit(cache=True, nogil=True)
def _ulaw_decode(table: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    for i in range(src.shape[0]):
        dst[i] = table[src[i]]


def ulaw_decode(ulaw: bytes | np.ndarray, table: np.ndarray) -> np.ndarray:
    """Batch μ-law decode through a 256-entry table (``ulaw_table()``)."""
    src = np.frombuffer(ulaw, dtype=np.uint8) if isinstance(ulaw, (bytes, bytearray)) else ulaw
    dst = np.empty(src.shape[0], dtype=np.int16)
    _ulaw_decode(table, src, dst)
    return dst


def ulaw_table() -> np.ndarray:
    """The decoder's 256 values, taken from the Cython codec (one source of truth)."""
    from native.codec import ulaw_to_pcm16

    return np.frombuffer(ulaw_to_pcm16(bytes(range(256))), dtype=np.int16).copy()


def warm_up() -> None:
    """Compile (or load from cache) the kernels, so timing excludes the JIT."""
    frame_rms(np.zeros(FRAME_SAMPLES, dtype=np.int16))
    ulaw_decode(b"\xff", ulaw_table())
