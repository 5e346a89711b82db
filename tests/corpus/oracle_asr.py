"""A recognizer that knows the script: what the caller said, when.

Every clip the line placed carries its words with their time spans (espeak: spread over the
voiced span; synthetic speech: exact). ``end_utterance(onset_ms, eou_ms)`` returns the words
whose middle lies in [onset_ms - preroll, eou_ms) — stream time, which the line keeps equal to
its own clock (20 ms per frame) — with the lowest confidence of the clips they came from.
A clip without words (knock, cough) gives "" unless the script gave it a hallucination
("you", "Thank you."), which then stands at the clip's middle like a word.

Finals take ``latency_s`` (virtual time), so the caller can talk while the session waits for
one. Partials: between ``begin_utterance`` and ``end_utterance``, ``on_partial`` gets the words
so far (is_final=False) each time the pushed frames pass the end of a word; ``push`` is called
once per inbound frame in order, so the frames counted ARE the stream clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import trio

from speech.base import Recognizer, Transcript

from .line import Placed


@dataclass(slots=True)
class AsrCall:
    onset_ms: int
    eou_ms: int
    asked_at: float  # virtual time (line clock) of the end_utterance call
    text: str = ""
    confidence: float = 0.0
    answered_at: float | None = None
    cancelled: bool = False


@dataclass(slots=True)
class _Word:
    text: str
    start_ms: float
    end_ms: float
    confidence: float
    order: int

    @property
    def mid_ms(self) -> float:
        return (self.start_ms + self.end_ms) / 2


class OracleRecognizer(Recognizer):
    name = "oracle-asr"

    def __init__(
        self,
        placed: Callable[[], list[Placed]],
        clock: Callable[[], float],
        latency_s: float = 0.4,
        preroll_ms: int = 300,
        partials: bool = True,
    ) -> None:
        self._placed = placed
        self._clock = clock
        self.latency_s = latency_s
        self.preroll_ms = preroll_ms
        self.partials = partials
        self.frames = 0
        self.begins: list[int] = []
        self.calls: list[AsrCall] = []
        self.partials_sent: list[tuple[int, str]] = []  # (stream ms, text)
        self.cancels = 0
        self._open: int | None = None  # onset of the utterance partials are running for
        self._last_partial = ""
        self._seen = -1
        self._words: list[_Word] = []

    # -- the script's words ------------------------------------------------------------------

    def _all_words(self) -> list[_Word]:
        placed = self._placed()
        if len(placed) != self._seen:
            words: list[_Word] = []
            for k, p in enumerate(placed):
                for w, a, b in p.words:
                    words.append(_Word(w, a * 1000, b * 1000, p.confidence, k))
                if not p.words and p.asr_text:
                    mid = (p.voice_start + p.voice_end) / 2 * 1000
                    words.append(_Word(p.asr_text, mid - 1, mid + 1, p.confidence, k))
            words.sort(key=lambda w: w.start_ms)
            self._words = words
            self._seen = len(placed)
        return self._words

    def words_in(self, lo_ms: float, hi_ms: float, finished_by_ms: float | None = None) -> tuple[str, float]:
        chosen = [
            w for w in self._all_words()
            if lo_ms <= w.mid_ms < hi_ms and (finished_by_ms is None or w.end_ms <= finished_by_ms)
        ]
        if not chosen:
            return "", 0.0
        return " ".join(w.text for w in chosen), min(w.confidence for w in chosen)

    # -- Recognizer ------------------------------------------------------------------------------

    def push(self, pcm16: bytes) -> None:
        self.frames += 1
        if self._open is None or not self.partials or self.on_partial is None:
            return
        now_ms = self.frames * 20
        text, conf = self.words_in(self._open - self.preroll_ms, now_ms, finished_by_ms=now_ms)
        if text and text != self._last_partial:
            self._last_partial = text
            self.partials_sent.append((now_ms, text))
            self.on_partial(Transcript(text, conf, False, self.name, self._open, now_ms))

    def begin_utterance(self, onset_ms: int) -> None:
        self.begins.append(onset_ms)
        self._open = onset_ms
        self._last_partial = ""

    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        call = AsrCall(onset_ms, eou_ms, self._clock())
        self.calls.append(call)
        if self._open is not None and self._open <= eou_ms:
            self._open = None
        try:
            await trio.sleep(self.latency_s)
        except trio.Cancelled:
            call.cancelled = True
            raise
        call.text, call.confidence = self.words_in(onset_ms - self.preroll_ms, eou_ms)
        call.answered_at = self._clock()
        return Transcript(call.text, call.confidence, True, self.name, onset_ms, eou_ms)

    def cancel_utterance(self) -> None:
        self.cancels += 1
        self._open = None
