"""Audio helpers shared by the providers: the stream-time ring buffer, 8k -> 16k, WAV framing.

All audio here is mono PCM16 little-endian. Stream time follows speech/base.py: frame ``i``
pushed into a :class:`FrameRing` covers ``[20*i, 20*i + 20)`` ms.
"""
from __future__ import annotations

import io
import wave

import numpy as np
import soxr

from native.config import FRAME_MS, FRAME_PCM_BYTES, SAMPLE_RATE

WHISPER_RATE = 16000


class FrameRing:
    """The last ``capacity_ms`` of a call's inbound audio, addressed by stream time.

    One preallocated bytearray, no per-frame objects: push() is a slice copy.
    """

    __slots__ = ("_buf", "_frames", "pushed")

    def __init__(self, capacity_ms: int) -> None:
        self._frames = max(1, capacity_ms // FRAME_MS)
        self._buf = bytearray(self._frames * FRAME_PCM_BYTES)
        self.pushed = 0  # frames pushed so far

    @property
    def end_ms(self) -> int:
        return self.pushed * FRAME_MS

    @property
    def start_ms(self) -> int:
        """Oldest stream time still held."""
        return max(0, self.pushed - self._frames) * FRAME_MS

    def push(self, pcm16: bytes) -> None:
        if len(pcm16) != FRAME_PCM_BYTES:
            # A short or long frame would shift stream time; pad / cut to keep the clock exact.
            pcm16 = bytes(pcm16[:FRAME_PCM_BYTES]).ljust(FRAME_PCM_BYTES, b"\0")
        at = (self.pushed % self._frames) * FRAME_PCM_BYTES
        self._buf[at : at + FRAME_PCM_BYTES] = pcm16
        self.pushed += 1

    def slice(self, start_ms: int, end_ms: int) -> bytes:
        """Audio of ``[start_ms, end_ms)`` clipped to what is held (frame-aligned)."""
        first = max(start_ms, self.start_ms) // FRAME_MS
        last = min(end_ms, self.end_ms) // FRAME_MS
        if last <= first:
            return b""
        out = bytearray()
        for i in range(first, last):
            at = (i % self._frames) * FRAME_PCM_BYTES
            out += self._buf[at : at + FRAME_PCM_BYTES]
        return bytes(out)

    def rms(self, start_ms: int, end_ms: int) -> float:
        pcm = self.slice(start_ms, end_ms)
        if not pcm:
            return 0.0
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        return float(np.sqrt(np.mean(samples * samples)))


def to_whisper_input(pcm16_8k: bytes) -> np.ndarray:
    """8 kHz PCM16 -> 16 kHz float32 in [-1, 1], the input faster-whisper takes."""
    samples = np.frombuffer(pcm16_8k, dtype="<i2").astype(np.float32) / 32768.0
    if samples.size == 0:
        return samples
    return soxr.resample(samples, SAMPLE_RATE, WHISPER_RATE, quality="HQ").astype(np.float32, copy=False)


def wav_bytes(pcm16: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """Wrap PCM16 mono in a WAV container (for upload APIs)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm16)
    return out.getvalue()


def strip_wav_header(data: bytes) -> bytes:
    """Return the ``data`` chunk of a RIFF/WAVE blob, or ``data`` unchanged if it has no header.

    Walks the chunks instead of assuming 44 bytes: Google's μ-law WAV carries a longer fmt chunk.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    at = 12
    while at + 8 <= len(data):
        chunk_id = data[at : at + 4]
        size = int.from_bytes(data[at + 4 : at + 8], "little")
        body = at + 8
        if chunk_id == b"data":
            # Streamed WAVs may carry a bogus (0 / 0xFFFFFFFF) size: take the rest.
            end = body + size if 0 < size <= len(data) - body else len(data)
            return data[body:end]
        at = body + size + (size & 1)
    return b""
