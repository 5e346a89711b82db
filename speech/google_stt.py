"""Google Speech-to-Text streaming (v1 by default, v2 selectable) (official google-cloud-speech client over gRPC).

The sync gRPC client runs each engine stream in a worker thread: a request generator fed by
a queue (audio in ~100 ms messages) and a response loop that hands results back to Trio.
The decisions (when to restart, which stream owns a word) are sans-IO in stt_ledger.py.

Streams rotate: at every EOU (half-close = fast final), before the ~5-minute limit at a quiet
moment (with ~0.5 s of replay), and after UNAVAILABLE / DEADLINE_EXCEEDED (reconnect with
backoff, replaying what was not yet finalized). The call never notices.

Each stream is opened with the phrase hints of the question the agent just asked
(:meth:`set_context` / :meth:`follow_context`, speech/hints.py): a new question while the
caller is silent rotates the stream at once (with the same replay as a quiet rotation), so
the answer is heard by a stream that expects it; while the caller talks it waits for the EOU.
"""
from __future__ import annotations

import ipaddress
import logging
import queue
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import grpc
import trio

from native.config import FRAME_MS
from telemetry.logs import log_event
from speech.audio import FrameRing
from speech.base import ContextSource, ProviderError, Recognizer, SpeechContext, Transcript
from speech.google_stt_api import SpeechV1, SpeechV2
from speech.hints import context_phrases, hints_for
from speech.stt_ledger import RestartPolicy, StreamSpan, Word, WordLedger, restart_due, rotation_cut

RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "OUT_OF_RANGE", "ABORTED", "INTERNAL", "RESOURCE_EXHAUSTED"}
MAX_RECONNECT_REPLAY_MS = 8_000
# Each stream holds one worker thread for its life; don't let them compete with to_thread's
# default limiter (used for short jobs).
_STREAM_THREADS = trio.CapacityLimiter(10_000)


@dataclass(frozen=True)
class GoogleSttSettings:
    api: str = "v1"  # v2: GOOGLE_CLOUD_PROJECT + GOOGLE_SPEECH_LOCATION, chirp_3 / telephony
    model: str = "default"  # latest_short is rejected for iw-IL; default / command_and_search work
    use_enhanced: bool = True
    recognizer: str = ""  # v2 only: projects/P/locations/L/recognizers/_
    language_override: str | None = None
    hints: tuple[str, ...] = ()
    boost: float = 10.0
    chunk_ms: int = 100
    class_tokens: bool = True  # Google's class tokens for the question, where the locale has any
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    final_timeout_s: float = 3.0
    stream_deadline_s: float = 330.0
    backoff_s: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "GoogleSttSettings":
        from native.config import ConfigError

        api = (env.get("GOOGLE_SPEECH_API") or "v1").lower()
        if api not in ("v1", "v2"):
            raise ConfigError(f"GOOGLE_SPEECH_API={api!r} is not v1 or v2")
        recognizer = ""
        if api == "v2":
            project = env.get("GOOGLE_CLOUD_PROJECT")
            if not project:
                raise ConfigError("GOOGLE_SPEECH_API=v2 needs GOOGLE_CLOUD_PROJECT (recognizers live in a project)")
            location = env.get("GOOGLE_SPEECH_LOCATION") or "eu"
            recognizer = f"projects/{project}/locations/{location}/recognizers/_"
        extra = tuple(h.strip() for h in (env.get("GOOGLE_SPEECH_HINTS") or "").split(",") if h.strip())
        return cls(
            api=api,
            recognizer=recognizer,
            model=env.get("GOOGLE_SPEECH_MODEL") or ("chirp_3" if api == "v2" else "default"),
            use_enhanced=(env.get("GOOGLE_SPEECH_ENHANCED") or "1").lower() not in ("0", "false", "no"),
            language_override=env.get("GOOGLE_SPEECH_LANGUAGE") or None,
            hints=extra,
            boost=float(env.get("GOOGLE_SPEECH_BOOST") or 10.0),
            class_tokens=(env.get("GOOGLE_SPEECH_CLASS_TOKENS") or "1").lower() not in ("0", "false", "no"),
        )


def google_language(language: str) -> str:
    """v1 knows Hebrew as iw-IL."""
    return "iw-IL" if language.split("-")[0].lower() in ("he", "iw") else language


def is_loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_speech_client(env: Mapping[str, str], settings: GoogleSttSettings | None = None) -> Any:
    """The official client for the configured API version. A loopback GOOGLE_SPEECH_ENDPOINT
    means a local fake: plaintext, no credentials (client_options alone would still use TLS)."""
    settings = settings or GoogleSttSettings()
    endpoint = env.get("GOOGLE_SPEECH_ENDPOINT") or None
    api = SpeechV2 if settings.api == "v2" else SpeechV1
    if endpoint is None and settings.api == "v2":
        location = settings.recognizer.split("/")[3] if settings.recognizer else "global"
        if location != "global":
            endpoint = f"{location}-speech.googleapis.com"  # v2 regional recognizers
    return api.make_client(endpoint, bool(endpoint) and is_loopback(endpoint))


class _Stream:
    """One engine stream: its span of the call, its request queue, its outcome."""

    def __init__(self, span: StreamSpan, number: int) -> None:
        self.span = span
        self.number = number
        self.requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.sent_until_ms = span.start_ms
        self.half_closed = False
        self.groups: tuple[tuple[tuple[str, ...], float], ...] = ()  # the question's phrase hints
        self.done = trio.Event()
        self.error: BaseException | None = None
        self.error_code: str = ""
        self.call: Any = None
        self.got_response = False

    def send(self, audio: bytes, until_ms: int) -> None:
        if not self.half_closed and audio:
            self.requests.put(audio)
            self.sent_until_ms = until_ms

    def half_close(self) -> None:
        if not self.half_closed:
            self.half_closed = True
            self.requests.put(None)

    def abort(self) -> None:
        self.half_close()
        if self.call is not None:
            try:
                self.call.cancel()
            except Exception:
                pass


class GoogleStreamingRecognizer(Recognizer):
    name = "google"

    def __init__(
        self,
        client: Any,
        settings: GoogleSttSettings,
        language: str = "he-IL",
        preroll_ms: int = 300,
        log: Any = log_event,
    ) -> None:
        self._client = client
        self.settings = settings
        self.language = settings.language_override or google_language(language)
        hints = hints_for(self.language, settings.hints)
        self._api: SpeechV1 | SpeechV2 = (
            SpeechV2(self.language, settings.model, hints, settings.boost, settings.recognizer)
            if settings.api == "v2"
            else SpeechV1(self.language, settings.model, settings.use_enhanced, hints, settings.boost)
        )
        self._preroll_ms = preroll_ms
        self.log = log
        ring_ms = max(MAX_RECONNECT_REPLAY_MS, settings.policy.replay_ms) + 10_000
        self._ring = FrameRing(ring_ms)
        self._ledger = WordLedger()
        self._pending = bytearray()
        self._chunk_bytes = settings.chunk_ms // FRAME_MS * 320
        self._stream: _Stream | None = None
        self._streams_opened = 0
        self._nursery: trio.Nursery | None = None
        self._in_utterance = False
        self._draining: set[_Stream] = set()
        self._last_error: str = ""
        self.restarts: dict[str, int] = {"eou": 0, "quiet": 0, "hard": 0, "reconnect": 0, "context": 0}
        self._context: SpeechContext | None = None
        self._groups: tuple[tuple[tuple[str, ...], float], ...] = ()
        self._context_due = False  # a new question while the caller talked: rotate after the EOU
        self._frames = 0

    # -- what the agent just asked ----------------------------------------------------------------
    def set_context(self, context: SpeechContext | None) -> None:
        if context == self._context:
            return
        self._context = context
        groups = tuple((tuple(p), b) for p, b in context_phrases(self.language, context, self.settings.class_tokens))
        if groups == self._groups:
            return
        self._groups = groups
        stream = self._stream
        if stream is None or stream.groups == groups or self._nursery is None:
            return  # the next stream opens with them
        if self._in_utterance:
            self._context_due = True  # the stream at this utterance's EOU will carry them
        else:
            self._rotate("context")

    def follow_context(self, source: ContextSource | None) -> None:
        self.context_source = source
        if source is not None:
            self.set_context(source())

    def _poll_context(self) -> None:
        source = self.context_source
        if source is not None:
            try:
                context = source()
            except Exception:  # the brain's view of its question must never break the audio path
                return
            self.set_context(context)

    @property
    def stream_start_ms(self) -> int:
        """Stream time where the current engine stream's audio begins (0 before run())."""
        return self._stream.span.start_ms if self._stream is not None else 0

    # -- Trio side -----------------------------------------------------------------------------
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self._supervise()
            finally:
                self._nursery = None
                if self._stream is not None:
                    self._stream.abort()

    async def _supervise(self) -> None:
        """Watch the current stream; rotations happen synchronously in push / end_utterance,
        so this loop only deals with streams that end on their own (errors)."""
        failures = 0
        self._open(replay_from=self._ring.start_ms, owns_from=self._ring.start_ms)
        while True:
            stream = self._stream
            assert stream is not None
            await stream.done.wait()
            if self._stream is not stream:
                continue  # it was rotated out and has finished draining
            if stream.got_response:
                failures = 0
            code = stream.error_code or "CLOSED"
            if stream.error is not None:
                self._last_error = f"{code}: {stream.error}"
                self.log("ERROR", logging.WARNING, provider=self.name, error=self._last_error[:300])
                if code not in RETRYABLE:
                    failures = max(failures, len(self.settings.backoff_s) - 1)  # auth/config: slow
            delay = self.settings.backoff_s[min(failures, len(self.settings.backoff_s) - 1)]
            failures += 1
            await trio.sleep(delay)
            if self._stream is stream:
                self._reconnect(stream)

    def _open(self, replay_from: int, owns_from: int) -> _Stream:
        start = max(replay_from, self._ring.start_ms) // FRAME_MS * FRAME_MS
        span = StreamSpan(start_ms=start, owns_from=owns_from)
        self._streams_opened += 1
        stream = _Stream(span, self._streams_opened)
        stream.groups = self._groups
        self._context_due = False
        now = self._ring.end_ms
        replay = self._ring.slice(start, now)
        for i in range(0, len(replay), self._chunk_bytes):
            stream.send(replay[i : i + self._chunk_bytes], now)
        stream.sent_until_ms = now
        self._pending.clear()
        self._stream = stream
        assert self._nursery is not None
        self._nursery.start_soon(self._pump, stream)
        return stream

    def _flush(self) -> None:
        if self._pending and self._stream is not None:
            self._stream.send(bytes(self._pending), self._ring.end_ms)
            self._pending.clear()

    def _rotate(self, reason: str, eou_ms: int | None = None) -> _Stream | None:
        """Hand over to a new stream; half-close the old one, which then finalizes. Returns it."""
        old = self._stream
        if old is None or self._nursery is None:
            return None
        self._flush()
        replay_from, cut = rotation_cut(self.settings.policy, self._ring.end_ms, reason, eou_ms)
        old.span.owns_until = cut
        old.half_close()
        if not old.done.is_set():
            self._draining.add(old)
        self.restarts[reason] += 1
        self._open(replay_from, owns_from=cut)
        return old

    def _reconnect(self, failed: _Stream) -> None:
        # Replay everything the failed stream had not finalized (bounded): nothing is lost.
        last = max((w.end_ms for w in self._ledger.words), default=failed.span.owns_from)
        replay_from = max(failed.span.owns_from, min(last, self._ring.end_ms),
                          self._ring.end_ms - MAX_RECONNECT_REPLAY_MS)
        failed.span.owns_until = replay_from
        self.restarts["reconnect"] += 1
        self._open(replay_from, owns_from=replay_from)

    async def _pump(self, stream: _Stream) -> None:
        try:
            await trio.to_thread.run_sync(self._pump_blocking, stream, trio.lowlevel.current_trio_token(),
                                          limiter=_STREAM_THREADS, abandon_on_cancel=True)
        finally:
            stream.abort()
            self._draining.discard(stream)
            stream.done.set()

    # -- worker thread -------------------------------------------------------------------------
    def _requests(self, stream: _Stream) -> Iterator[Any]:
        yield self._api.config_request(stream.groups)
        while True:
            audio = stream.requests.get()
            if audio is None:
                return  # half-close: the engine finalizes what it has and ends the stream
            yield self._api.audio_request(audio)

    def _pump_blocking(self, stream: _Stream, token: trio.lowlevel.TrioToken) -> None:
        from google.api_core import exceptions as gexc

        try:
            responses = self._client.streaming_recognize(
                requests=self._requests(stream), timeout=self.settings.stream_deadline_s,
                retry=None,
            )
            stream.call = responses
            for response in responses:
                trio.from_thread.run_sync(self._on_response, stream, response, trio_token=token)
        except gexc.GoogleAPICallError as exc:
            stream.error = exc
            stream.error_code = exc.grpc_status_code.name if exc.grpc_status_code else "UNKNOWN"
        except grpc.RpcError as exc:  # pragma: no cover - api_core normally wraps these
            stream.error = exc
            stream.error_code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
        except trio.RunFinishedError:
            pass
        except Exception as exc:
            if stream.half_closed and "Cancelled" in type(exc).__name__:
                return
            stream.error = exc
            stream.error_code = "UNKNOWN"

    # -- results (Trio thread) -------------------------------------------------------------------
    def _on_response(self, stream: _Stream, response: Any) -> None:
        stream.got_response = True
        base = stream.span.start_ms
        for result in self._api.results(response):
            if result.is_final:
                words = [Word(w, base + start, base + end, result.confidence) for w, start, end in result.words]
                if not words and result.transcript:
                    # No word offsets (some models): the whole result as one "word" ending at
                    # its end time.
                    end = base + result.end_ms
                    words = [Word(result.transcript, max(stream.span.owns_from, end - 1), end, result.confidence)]
                self._ledger.add(stream.span, words)
            elif self._in_utterance and self.on_partial is not None and stream is self._stream:
                self.on_partial(Transcript(result.transcript, result.confidence, False, self.name,
                                           base, base + result.end_ms))

    # -- Recognizer interface --------------------------------------------------------------------
    def push(self, pcm16: bytes) -> None:
        self._ring.push(pcm16)
        stream = self._stream
        if stream is None:
            return
        self._pending += pcm16
        if len(self._pending) >= self._chunk_bytes:
            stream.send(bytes(self._pending), self._ring.end_ms)
            self._pending.clear()
        reason = restart_due(self.settings.policy, stream.span.start_ms, self._ring.end_ms, self._in_utterance)
        if reason is not None and self._nursery is not None:
            self._rotate(reason)
        self._frames += 1
        if self.context_source is not None and self._frames % 5 == 0:  # every 100 ms
            self._poll_context()

    def bind_log(self, log: Any) -> None:
        self.log = log

    def begin_utterance(self, onset_ms: int) -> None:
        self._in_utterance = True

    def cancel_utterance(self) -> None:
        self._in_utterance = False

    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        self._in_utterance = False
        if self._nursery is None:
            raise ProviderError(self.name, "recognizer is not running")
        old = self._rotate("eou", eou_ms)
        if old is None:
            raise ProviderError(self.name, "no stream open yet")
        # Every stream that heard part of this utterance must have finalized (an earlier
        # restart may still be draining).
        waiting = [st for st in self._draining | {old} if st.span.owns_until > onset_ms - self._preroll_ms]
        with trio.move_on_after(self.settings.final_timeout_s):
            for st in waiting:
                await st.done.wait()
        if not old.done.is_set():
            old.abort()
            raise ProviderError(self.name, f"no final within {self.settings.final_timeout_s:.1f} s")
        if old.error is not None:
            self._last_error = f"{old.error_code}: {old.error}"
            raise ProviderError(self.name, self._last_error[:300])
        start = max(0, onset_ms - self._preroll_ms)
        words = self._ledger.take(start, eou_ms)
        text = " ".join(w.text for w in words).strip()
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        return Transcript(text, confidence, True, self.name, start, eou_ms)
