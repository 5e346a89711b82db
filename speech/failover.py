"""Failover: when the primary provider errors or stalls mid-call, this utterance (or sentence)
goes to the fallback and the call carries on. Every switch is logged (PROVIDER_SWITCH) and
counted (provider_errors_total, provider_fallbacks_total)."""
from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Callable

import trio

from telemetry import metrics
from telemetry.logs import log_event
from speech.base import ContextSource, ProviderError, Recognizer, SpeechContext, Synthesizer, Transcript

LogFn = Callable[..., None]

DEFAULT_STALL_S = 1.2
# After this many failures in a row the primary sits out a few utterances instead of making
# every turn wait for its deadline; then it is probed again.
FAILURES_BEFORE_BENCH = 2
BENCHED_UTTERANCES = 3


class FailoverRecognizer(Recognizer):
    def __init__(
        self,
        primary: Recognizer,
        fallback: Recognizer,
        stall_s: float = DEFAULT_STALL_S,
        log: LogFn = log_event,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.stall_s = stall_s
        self.log = log
        self.name = primary.name
        self.switches = 0
        self._failures = 0
        self._benched = 0
        primary.on_partial = self._forward_partial

    def _forward_partial(self, transcript: Transcript) -> None:
        if self.on_partial is not None:
            self.on_partial(transcript)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._run_primary)
            nursery.start_soon(self.fallback.run)

    async def _run_primary(self) -> None:
        try:
            await self.primary.run()
        except Exception as exc:  # the primary's own loop died: the call goes on without it
            self._record_error(f"primary loop ended: {exc}")
            self._benched = 1 << 30
            await trio.sleep_forever()

    def bind_log(self, log: LogFn) -> None:
        self.log = log
        self.primary.bind_log(log)
        self.fallback.bind_log(log)

    def push(self, pcm16: bytes) -> None:
        self.primary.push(pcm16)
        self.fallback.push(pcm16)

    def set_context(self, context: SpeechContext | None) -> None:
        self.primary.set_context(context)
        self.fallback.set_context(context)

    def follow_context(self, source: ContextSource | None) -> None:
        self.context_source = source
        self.primary.follow_context(source)
        self.fallback.follow_context(source)

    def begin_utterance(self, onset_ms: int) -> None:
        self.primary.begin_utterance(onset_ms)
        self.fallback.begin_utterance(onset_ms)

    def cancel_utterance(self) -> None:
        self.primary.cancel_utterance()
        self.fallback.cancel_utterance()

    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        if self._benched > 0:
            self._benched -= 1
            # it saw begin_utterance: drop that utterance, or a streaming primary stays
            # "mid-utterance" and holds back its quiet-moment stream restarts
            self.primary.cancel_utterance()
            reason = "primary benched after repeated failures"
        else:
            reason = ""
            with trio.move_on_after(self.stall_s) as scope:
                try:
                    result = await self.primary.end_utterance(onset_ms, eou_ms)
                except ProviderError as exc:
                    reason = str(exc)
                else:
                    self._failures = 0
                    return result
            if scope.cancelled_caught:
                reason = f"no final within {self.stall_s:.2f} s"
            self.primary.cancel_utterance()
            self._record_error(reason)
            self._failures += 1
            if self._failures >= FAILURES_BEFORE_BENCH:
                self._failures = 0
                self._benched = BENCHED_UTTERANCES
        self.switches += 1
        metrics.provider_fallbacks_total.labels(kind="asr").inc()
        self.log("PROVIDER_SWITCH", logging.WARNING, kind="asr", **{"from": self.primary.name},
                 to=self.fallback.name, reason=reason, onset_ms=onset_ms, eou_ms=eou_ms)
        return await self.fallback.end_utterance(onset_ms, eou_ms)

    def _record_error(self, reason: str) -> None:
        metrics.provider_errors_total.labels(provider=self.primary.name).inc()
        self.log("ERROR", logging.WARNING, provider=self.primary.name, error=reason)


class FailoverSynthesizer(Synthesizer):
    """A sentence the primary cannot start (error or no audio within the deadline) is spoken
    by the fallback instead. Once audio has flowed, a later error ends the sentence early
    rather than replaying its start in another voice."""

    def __init__(self, primary: Synthesizer, fallback: Synthesizer, first_audio_s: float = 1.5,
                 log: LogFn = log_event) -> None:
        self.primary = primary
        self.fallback = fallback
        self.first_audio_s = first_audio_s
        self.log = log
        self.name = primary.name

    async def warm(self, lines: list[str]) -> None:
        try:
            await self.primary.warm(lines)
        except ProviderError as exc:
            self._switch(str(exc))
        await self.fallback.warm(lines)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        started = False
        reason = ""
        agen: Any = self.primary.synthesize(text)
        try:
            while True:
                chunk: bytes | None = None
                if started:
                    try:
                        chunk = await agen.__anext__()
                    except StopAsyncIteration:
                        return
                else:
                    with trio.move_on_after(self.first_audio_s) as scope:
                        try:
                            chunk = await agen.__anext__()
                        except StopAsyncIteration:
                            return
                    if scope.cancelled_caught:
                        reason = f"no audio within {self.first_audio_s:.2f} s"
                        break
                started = True
                yield chunk
        except ProviderError as exc:
            if started:
                self._record(str(exc))
                return
            reason = str(exc)
        finally:
            await agen.aclose()
        self._record(reason)
        self._switch(reason)
        async for chunk in self.fallback.synthesize(text):
            yield chunk

    def _record(self, reason: str) -> None:
        metrics.provider_errors_total.labels(provider=self.primary.name).inc()
        self.log("ERROR", logging.WARNING, provider=self.primary.name, error=reason)

    def _switch(self, reason: str) -> None:
        metrics.provider_fallbacks_total.labels(kind="tts").inc()
        self.log("PROVIDER_SWITCH", logging.WARNING, kind="tts", **{"from": self.primary.name},
                 to=self.fallback.name, reason=reason)
