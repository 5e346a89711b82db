"""The agent's side for the corpus: its voice (recording every text asked) and a spy on the
real RuleBrain (instrumentation only: the brain's behaviour is the real one).

AgentVoice renders each text the session asks for synchronously inside ``synthesize``
(espeak-ng through a blocking subprocess, or synthetic speech): a blocking call does not
advance trio's virtual clock, so the reply starts in the same virtual instant, like a warm
cache. Renders are cached for the process. Each call keeps its text, PCM and word spans: the
judge finds which words of which text the caller heard by matching the μ-law frames that
played against these renders (the session's pacer starts every sentence on a frame edge).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import AsyncIterator

import numpy as np
import trio

from dialog.base import CallerTurn
from dialog.rules import RuleBrain
from native.config import SAMPLE_RATE
from speech.base import Synthesizer

from .voices import BLOCK, block_rms, spread_words, synth_speech, _words

AGENT_SYNTH_RMS = 2500.0
_RENDERS: dict[tuple[str, str, str], tuple[np.ndarray, tuple[tuple[str, float, float], ...]]] = {}


@dataclass(slots=True)
class SynthCall:
    index: int
    text: str
    pcm: np.ndarray  # int16
    words: tuple[tuple[str, float, float], ...]  # (word, start s, end s) inside pcm
    asked_at: float  # virtual time (trio clock)


def _espeak_agent(text: str, language: str) -> tuple[np.ndarray, tuple[tuple[str, float, float], ...]]:
    from speech.espeak import render

    pcm = np.frombuffer(render(text, language), dtype="<i2").copy()
    r = block_rms(pcm)
    loud = np.flatnonzero(r > 200)
    span = (loud[0] * BLOCK / SAMPLE_RATE, (loud[-1] + 1) * BLOCK / SAMPLE_RATE) if len(loud) else (0.0, len(pcm) / SAMPLE_RATE)
    return pcm, spread_words(_words(text), *span)


def _synth_agent(text: str, language: str) -> tuple[np.ndarray, tuple[tuple[str, float, float], ...]]:
    seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "little")
    pcm, words = synth_speech(text, "he" if language.startswith(("he", "iw")) else "en", seed)
    pcm = pcm * (AGENT_SYNTH_RMS / 2000.0)
    lead = np.zeros(int(0.03 * SAMPLE_RATE), dtype=np.float32)  # like a TTS: a little silence around
    tail = np.zeros(int(0.25 * SAMPLE_RATE), dtype=np.float32)
    out = np.clip(np.concatenate([lead, pcm, tail]), -32000, 32000).astype(np.int16)
    return out, tuple((w, a + 0.03, b + 0.03) for w, a, b in words)


def render_agent(text: str, language: str, kind: str) -> tuple[np.ndarray, tuple[tuple[str, float, float], ...]]:
    key = (kind, language, text)
    hit = _RENDERS.get(key)
    if hit is None:
        hit = _espeak_agent(text, language) if kind == "espeak" else _synth_agent(text, language)
        _RENDERS[key] = hit
    return hit


class AgentVoice(Synthesizer):
    """The agent's TTS for the corpus: ``kind`` is "espeak" or "synth"."""

    def __init__(self, language: str, kind: str = "espeak", chunk_samples: int = 1600) -> None:
        self.language = language
        self.kind = kind
        self.name = f"corpus-{kind}"
        self.chunk_samples = chunk_samples
        self.calls: list[SynthCall] = []

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.calls]

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        pcm, words = render_agent(text, self.language, self.kind)  # blocking: no virtual time passes
        self.calls.append(SynthCall(len(self.calls), text, pcm, words, trio.current_time()))
        for i in range(0, len(pcm), self.chunk_samples):
            yield pcm[i : i + self.chunk_samples].tobytes()


class SpyRuleBrain(RuleBrain):
    """The real offline brain; counts what the session asked of it."""

    def __init__(self, language: str, caller_phone: str, now: dt.datetime) -> None:
        super().__init__(language, caller_phone, now)
        self.turns: list[CallerTurn] = []
        self.turn_times: list[float] = []
        self.replies: list[list[str]] = []  # the sentences each respond() yielded
        self.heard_log: list[tuple[str, bool]] = []

    def respond(self, turn: CallerTurn) -> AsyncIterator[str]:  # type: ignore[override]
        self.turns.append(turn)
        self.turn_times.append(trio.current_time())
        sentences: list[str] = []
        self.replies.append(sentences)
        inner = super().respond(turn)

        async def recorded() -> AsyncIterator[str]:
            async for sentence in inner:
                sentences.append(sentence)
                yield sentence

        return recorded()

    def heard(self, said: str, heard_fully: bool) -> None:
        self.heard_log.append((said, heard_fully))
        super().heard(said, heard_fully)

