"""espeak-ng: the offline voice. Also makes caller speech for tests and the simulated caller.

espeak-ng writes 22.05 kHz PCM16 WAV; we resample to 8 kHz with soxr (the phone rate).
"""
from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import soxr

from native.config import SAMPLE_RATE

ESPEAK_RATE = 22050
VOICES = {"he": "he", "en": "en-us"}


class EspeakMissing(RuntimeError):
    pass


def espeak_binary() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise EspeakMissing("espeak-ng is not installed (apt-get install espeak-ng; `make` does it)")
    return path


def voice_for(language: str) -> str:
    """'he-IL' / 'iw-IL' / 'he' -> 'he'; 'en-US' -> 'en-us'."""
    base = language.split("-")[0].lower()
    return VOICES.get("he" if base == "iw" else base, base)


def render(text: str, language: str = "he-IL", words_per_minute: int = 165, pitch: int = 50) -> bytes:
    """Synthesize ``text`` to 8 kHz mono PCM16 bytes (blocking; run it in a thread on a server)."""
    proc = subprocess.run(
        [espeak_binary(), "-v", voice_for(language), "-s", str(words_per_minute), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=30,
    )
    with wave.open(io.BytesIO(proc.stdout)) as wav:
        rate = wav.getframerate()
        # espeak's streamed header has a bogus length; read what is there.
        raw = wav.readframes(wav.getnframes())
    samples = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ")
    return np.asarray(samples, dtype="<i2").tobytes()
