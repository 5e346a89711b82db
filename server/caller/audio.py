"""Caller-side audio helpers: G.711 (the native kernels), WAV loading, voiced spans."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import soxr

from native.config import SAMPLE_RATE

from native.codec import pcm16_to_ulaw, ulaw_to_pcm16

__all__ = ["pcm16_to_ulaw", "ulaw_to_pcm16", "voiced_span", "load_wav", "noise", "VOICED_RMS"]

VOICED_RMS = 300.0  # caller speech onset/end: 5 ms blocks above this RMS
_BLOCK = 40


def voiced_span(samples: np.ndarray) -> tuple[int, int]:
    """(first voiced sample, end of the last voiced block); (0, 0) for silence."""
    n = len(samples) // _BLOCK
    if n == 0:
        return 0, 0
    blocks = samples[: n * _BLOCK].astype(np.float64).reshape(n, _BLOCK)
    loud = np.flatnonzero(np.sqrt((blocks**2).mean(axis=1)) > VOICED_RMS)
    if len(loud) == 0:
        return 0, 0
    return int(loud[0]) * _BLOCK, int(loud[-1] + 1) * _BLOCK


def load_wav(path: str | Path) -> np.ndarray:
    """Any PCM16 WAV -> 8 kHz mono int16 (first channel)."""
    with wave.open(str(path)) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    data = data[::channels] if channels > 1 else data
    if rate != SAMPLE_RATE:
        data = soxr.resample(data, rate, SAMPLE_RATE, quality="HQ")
    return np.asarray(data, dtype=np.int16)


def noise(rms: float, ms: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, rms, int(ms * SAMPLE_RATE / 1000))
    return np.clip(samples, -32768, 32767).astype(np.int16)
