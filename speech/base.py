"""The two small interfaces the call session uses: a streaming recognizer and a synthesizer.

Audio on both sides is 8 kHz mono PCM16 little-endian (never μ-law): the session decodes
Twilio's μ-law before the recognizer and encodes after the synthesizer.

Time on the inbound side is *stream time*: frame ``i`` pushed with :meth:`Recognizer.push`
covers ``[20*i, 20*i + 20)`` ms. The session's voice detectors speak the same clock, so an
utterance is named by its voice-onset time and its EOU time; the recognizer keeps enough
audio (at least ``preroll_ms`` before onset) to hand its engine the words from the onset,
including after a barge-in.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator, Callable


class ProviderError(Exception):
    """A speech provider failed (network, quota, bad response). Never fatal to a call."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    confidence: float  # 0..1; 0 when the engine gives none and the text is empty
    is_final: bool = True
    provider: str = ""
    start_ms: int = 0  # stream time of the audio it covers
    end_ms: int = 0


PartialCallback = Callable[[Transcript], None]


@dataclass(frozen=True, slots=True)
class SpeechContext:
    """What the agent just asked, so the recognizer can expect the answer: the slot its last
    question asks for ("budget_ils", "area", "rooms", "property_type", "deal", "timeframe",
    "name", "phone", "meeting", "confirm"; None: nothing in particular) and, for the area
    question, the places next to the area already given."""

    expecting: str | None = None
    near: tuple[str, ...] = ()


ContextSource = Callable[[], "SpeechContext | None"]


class Recognizer(abc.ABC):
    """A streaming recognizer for one call. Created per call, run inside the call's nursery."""

    name: str = "recognizer"

    async def run(self) -> None:
        """Own the engine connection(s) for the whole call; returns only when cancelled.

        The default has nothing to run (batch engines work in :meth:`end_utterance`).
        """
        import trio

        await trio.sleep_forever()

    @abc.abstractmethod
    def push(self, pcm16: bytes) -> None:
        """One 20 ms frame (320 bytes), every frame of the call, in order. Never blocks."""

    def begin_utterance(self, onset_ms: int) -> None:
        """The voice detector saw the caller start talking at stream time ``onset_ms``."""

    @abc.abstractmethod
    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        """EOU at ``eou_ms``: finalize fast and return the final transcript of
        ``[onset_ms - preroll, eou_ms)``. Raises :class:`ProviderError` on failure."""

    def cancel_utterance(self) -> None:
        """The utterance was abandoned (call ending); drop its state."""

    def bind_log(self, log: Callable[..., None]) -> None:
        """Optional: the call's logger (a telemetry.logs.CallLog) for the recognizer's own ERROR /
        PROVIDER_SWITCH lines, so they carry call_sid and t. Without it they are service-level."""

    def set_context(self, context: SpeechContext | None) -> None:
        """What the agent is asking now: the next engine stream may carry phrase hints for the
        answer (Google: one stream per utterance, so each carries the hints of the question
        just asked). Engines without phrase hints ignore it."""

    def follow_context(self, source: ContextSource | None) -> None:
        """Read the context from ``source`` (e.g. ``brain.speech_context``) whenever it may have
        changed, instead of being told with :meth:`set_context`. The session wires it once
        per call; a recognizer without phrase hints ignores it."""
        self.context_source = source

    on_partial: PartialCallback | None = None
    context_source: ContextSource | None = None


class Synthesizer(abc.ABC):
    """Text to 8 kHz PCM16, streamed as it is made. Cancel by cancelling the consuming scope."""

    name: str = "synthesizer"

    @abc.abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield PCM16 chunks of any length in whole samples, as soon as each is made."""

    async def warm(self, lines: list[str]) -> None:
        """Pre-synthesize fixed lines (greeting, clarify, goodbye) so they start instantly."""
