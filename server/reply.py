"""One agent turn, from the brain's sentences to audio at the caller: :class:`Reply`.

A reply has two halves that live as two tasks in the call's nursery:

- the *producer* pulls the brain's sentences (each under a deadline; a failure becomes the
  clarify line, a turn never ends in silence) and registers each with the turn machine;
- a *speaker* synthesizes them into the :class:`~server.pacer.Pacer`, with a mark after each
  sentence and, at the end, tail silence and the final mark.

They are separate because a barge-in stops only the speaker: until the interruption is
judged, the brain goes on writing the turn, so a false interruption can resume it — even a
sentence the brain had not produced yet at the cut — and a real one drops it (the brain's
stream is closed then, see :meth:`Reply.drop`). A resumption is a new speaker *segment* that
starts at a sentence and word; its marks carry the segment in their names, so echoes of
audio that was cleared never count as heard.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Callable

import trio

from server import turn as T

if TYPE_CHECKING:
    from dialog.base import Brain
    from server.session import CallSession


class Reply:
    def __init__(
        self, call: "CallSession", turn: int, sentences: AsyncIterator[str], eou_at: float | None,
        lead_before: object | None, after: trio.Event | None,
    ) -> None:
        self.call = call
        self.turn = turn
        self._sentences = sentences
        self.eou_at = eou_at  # when the caller's turn ended (None: the greeting)
        self._lead_before = lead_before  # the lead before the brain took this turn
        self._after = after  # the previous reply's producer: the brain takes one turn at a time
        self.texts: list[str] = []
        self.done = False  # the producer has finished (self.texts is the whole turn)
        self.produced = trio.Event()  # the producer's task has ended, cleanup included
        self._changed = trio.Event()
        self._producer_scope = trio.CancelScope()
        self._speaker_scope: trio.CancelScope | None = None
        self._retract = False
        self.dropped = False
        self.segment = 0
        # Per sentence index of the current segment: [first frame, end frame, word offset,
        # first audible frame, end of the audible frames] (pacer positions)
        self.spans: dict[int, list[int]] = {}
        self.played: trio.Event | None = None  # the final mark of the current segment came back

    # -- the producer ------------------------------------------------------------------------------

    async def produce(self) -> None:
        call = self.call
        brain = call.brain
        assert brain is not None
        try:
            with self._producer_scope:
                if self._after is not None:
                    await self._after.wait()
                try:
                    await self._pull(brain)
                finally:
                    self.done = True
                    self._notify()
                    # Also when the reply is cut while the brain still streams: the brain updated
                    # the lead from the caller's turn before it spoke, and that update (what a
                    # crash recovery sends) must not wait for some later turn or the call's end.
                    if self._lead_before is not None and not self._retract and brain.lead != self._lead_before:
                        call.lead_changed(brain)
        finally:
            if self._retract:
                self._retract_now(brain)
            self.produced.set()

    async def _pull(self, brain: "Brain") -> None:
        call = self.call
        produced = 0
        iterator = self._sentences.__aiter__()
        try:
            while True:
                with trio.fail_after(call.deps.brain_timeout_s):
                    try:
                        text = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                if text.strip():
                    self._add(text)
                    produced += 1
        except trio.TooSlowError:
            call.provider_error(brain.name, TimeoutError(f"no sentence within {call.deps.brain_timeout_s}s"))
        except Exception as exc:  # brain failure: never silence; say the clarify line
            call.provider_error(getattr(exc, "provider", brain.name), exc)
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:  # cut by a barge-in or a drop: close the brain's stream now
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    try:
                        await aclose()
                    except Exception:
                        pass
        if produced == 0:  # a turn always gets an answer, at worst the clarify line
            self._add(call.clarify_line())

    def _add(self, text: str) -> None:
        index = len(self.texts)
        self.texts.append(text)
        self.call.dispatch(T.Sentence(self.turn, index, text))
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _sentence(self, index: int) -> str | None:
        while index >= len(self.texts):
            if self.done:
                return None
            await self._changed.wait()
        return self.texts[index]

    # -- control -----------------------------------------------------------------------------------

    def stop_speaking(self) -> None:
        """Barge-in / collision: the speaker stops at once; the producer goes on."""
        if self._speaker_scope is not None:
            self._speaker_scope.cancel()
        self.played = None

    def drop(self, retract: bool) -> None:
        """Abandon the turn. ``retract``: the caller heard none of it and goes on talking, so
        the brain takes back the turn it produced (once its stream is closed)."""
        self.dropped = True
        self.stop_speaking()
        self._producer_scope.cancel()
        if retract:
            if self.produced.is_set():
                brain = self.call.brain
                if brain is not None and self._lead_before is not None:
                    self._retract_now(brain)
            else:
                self._retract = True

    def _retract_now(self, brain: "Brain") -> None:
        if self._lead_before is None:
            return  # the greeting / clarify line: nothing the brain has to take back
        try:
            brain.retract()
        except Exception as exc:
            self.call.log("ERROR", where="brain.retract", error=repr(exc))

    # -- a speaker segment -------------------------------------------------------------------------

    async def speak(self, segment: int, index: int, word: int) -> None:
        """Speak the turn from sentence ``index``, word ``word``, to its end; then the tail
        silence and the final mark, and wait for its echo (or time out)."""
        scope = trio.CancelScope()
        self._speaker_scope = scope
        self.segment = segment
        call = self.call
        with scope:
            await self._speak(call, segment, index, word)

    async def _speak(self, call: "CallSession", segment: int, index: int, word: int) -> None:
        pacer = call.pacer
        epoch = pacer.epoch
        turn = self.turn
        first_position = pacer.position
        self.spans = {}
        first_text: list[str] = []

        def on_first_frame(now: float) -> None:
            call.speech_started(self, segment, now, first_text[0] if first_text else "")

        pacer.cue(epoch, callback=on_first_frame, after_frames=1)
        i = index
        while True:
            text = await self._sentence(i)
            if text is None:
                break
            offset = 0
            spoken = text
            if i == index and word > 0:
                words = text.split()
                offset = min(word, max(0, len(words) - 1))
                spoken = " ".join(words[offset:])
            if not first_text:
                first_text.append(spoken)
            span = [pacer.position, -1, offset, -1, -1]
            self.spans[i] = span
            span[3], span[4] = await call.synthesize(spoken, epoch)
            name = T.sentence_mark(turn, i, segment)
            pacer.cue(epoch, mark=name, callback=lambda now, n=name, t=spoken: call.log("MARK_SENT", name=n, text=t))
            span[1] = pacer.position
            i += 1
        audio_end = pacer.position
        pacer.cue(epoch, callback=lambda now: call.log("TTS_END", turn=turn, frames=audio_end - first_position))
        await pacer.write_silence(call.cfg.tail_silence_ms, epoch)
        played = self.played = trio.Event()
        mark_sent = trio.Event()
        final = T.final_mark(turn, segment)

        def on_final_sent(now: float) -> None:
            call.log("MARK_SENT", name=final)
            mark_sent.set()

        pacer.cue(epoch, mark=final, callback=on_final_sent)
        await mark_sent.wait()
        with trio.move_on_after(call.cfg.mark_timeout_ms / 1000.0):
            await played.wait()
            return
        call.log("ERROR", where="mark", name=final, error="mark echo timeout")
        call.playback_over(timed_out=True)

    def partial_words(self, acked: int, played_frame: int, pending_end: int) -> int:
        """Words of sentence ``acked`` the caller has heard by frame ``played_frame`` (the cut
        segment's word offset included), the word playing at that moment counted as not yet
        heard; all of them once its audible part has played (its mark may still be on the way,
        behind the TTS's trailing silence)."""
        span = self.spans.get(acked)
        if span is None or acked >= len(self.texts):
            return 0
        start, end, offset, loud_start, loud_end = span
        if loud_start >= 0 and loud_end > loud_start:
            start, end = loud_start, loud_end
        elif end < 0:
            end = pending_end
        total = len(self.texts[acked].split())
        if played_frame >= end > start and span[1] >= 0:
            return total
        if end <= start or played_frame <= start:
            return offset
        fraction = min(1.0, (played_frame - start) / (end - start))
        return offset + int(fraction * (total - offset))


async def one_line(text: str) -> AsyncIterator[str]:
    yield text


async def guarded_sentences(make: Callable[[], "str | AsyncIterator[str]"]) -> AsyncIterator[str]:
    """The brain's sentences, with a failure to even start (a sync raise from ``opening`` or
    ``respond``) surfacing inside the iteration, where the producer turns it into the
    clarify line instead of losing the turn."""
    made = make()
    if isinstance(made, str):
        yield made
        return
    try:
        async for sentence in made:
            yield sentence
    finally:  # cut by a barge-in: close the brain's stream now (e.g. its HTTP response)
        aclose = getattr(made, "aclose", None)
        if aclose is not None:
            await aclose()

