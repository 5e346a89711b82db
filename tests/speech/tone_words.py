"""A toy spoken language the fake servers can 'recognize' exactly.

A word is a run of 20 ms frames whose samples all equal the word's number (1..32767);
silence is zeros. Word n reads "w<n>". Runs shorter than MIN_FRAMES are not words (like a
click). Frame-aligned, so decoding is exact and fast with numpy.
"""
from __future__ import annotations

import numpy as np

FRAME = 160
MIN_FRAMES = 4


def word_audio(n: int, frames: int = 10) -> bytes:
    return np.full(FRAME * frames, n, dtype="<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\0" * (ms // 20 * 320)


def frame_values(pcm: bytes) -> np.ndarray:
    s = np.frombuffer(pcm[: len(pcm) // 320 * 320], dtype="<i2").reshape(-1, FRAME)
    same = np.all(s == s[:, :1], axis=1)
    return np.where(same, s[:, 0], 0).astype(np.int32)


class WordDecoder:
    """Streaming decoder: feed frames, get (word, start_ms, end_ms) as each word ends."""

    def __init__(self) -> None:
        self.frames = 0
        self.current = 0
        self.start = 0

    def feed(self, pcm: bytes) -> list[tuple[str, int, int]]:
        out = []
        for v in frame_values(pcm):
            if v != self.current:
                out += self._close()
                self.current, self.start = int(v), self.frames
            self.frames += 1
        return out

    def in_word(self) -> str | None:
        return f"w{self.current}" if self.current and self.frames - self.start >= 2 else None

    def finish(self) -> list[tuple[str, int, int]]:
        out = self._close()
        self.current = 0
        return out

    def _close(self) -> list[tuple[str, int, int]]:
        if self.current and self.frames - self.start >= MIN_FRAMES:
            return [(f"w{self.current}", self.start * 20, self.frames * 20)]
        return []


def decode_all(pcm: bytes) -> list[str]:
    d = WordDecoder()
    return [w for w, _, _ in d.feed(pcm) + d.finish()]
