"""Google Text-to-Speech (official google-cloud-texttospeech client over gRPC), 8 kHz out.

Sentence by sentence: the next sentence is requested while the current one plays. Chirp 3 HD
voices use StreamingSynthesize (audio arrives in pieces as it is made); other voices use
SynthesizeSpeech, whose μ-law / LINEAR16 payload carries a WAV header that we strip.
Fixed lines (greeting, clarify, goodbye) are cached by :meth:`warm` and start instantly.
"""
from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterator, Mapping

import grpc
import trio

from native.codec import ulaw_to_pcm16
from speech.audio import strip_wav_header
from speech.base import ProviderError, Synthesizer
from speech.google_stt import is_loopback
from speech.sentences import split_sentences

ENCODINGS = ("LINEAR16", "MULAW")
_END = object()


@dataclass(frozen=True)
class GoogleTtsSettings:
    language: str = "he-IL"
    voice: str = "he-IL-Wavenet-A"
    encoding: str = "LINEAR16"  # measured faster end to end on the fake; see bench/
    speaking_rate: float = 1.0
    pitch: float = 0.0
    timeout_s: float = 10.0
    streaming: bool | None = None  # None: streaming exactly for Chirp 3 HD voices

    @property
    def use_streaming(self) -> bool:
        return self.streaming if self.streaming is not None else "Chirp3-HD" in self.voice

    @classmethod
    def from_env(cls, env: Mapping[str, str], language: str) -> "GoogleTtsSettings":
        from native.config import ConfigError

        lang = "he-IL" if language.split("-")[0].lower() in ("he", "iw") else language
        default_voice = "he-IL-Wavenet-A" if lang == "he-IL" else f"{lang}-Wavenet-F"
        encoding = (env.get("GOOGLE_TTS_ENCODING") or "LINEAR16").upper()
        if encoding not in ENCODINGS:
            raise ConfigError(f"GOOGLE_TTS_ENCODING={encoding!r} is not one of {', '.join(ENCODINGS)}")
        try:
            rate = float(env.get("GOOGLE_TTS_RATE") or 1.0)
            pitch = float(env.get("GOOGLE_TTS_PITCH") or 0.0)
        except ValueError as exc:
            raise ConfigError(f"GOOGLE_TTS_RATE / GOOGLE_TTS_PITCH must be numbers: {exc}") from exc
        if not 0.25 <= rate <= 2.0 or not -20.0 <= pitch <= 20.0:
            raise ConfigError("GOOGLE_TTS_RATE must be 0.25..2.0 and GOOGLE_TTS_PITCH -20..20")
        return cls(language=lang, voice=env.get("GOOGLE_TTS_VOICE") or default_voice, encoding=encoding,
                   speaking_rate=rate, pitch=pitch)


def make_tts_client(env: Mapping[str, str]) -> Any:
    from google.cloud.texttospeech_v1.services.text_to_speech import TextToSpeechClient
    from google.cloud.texttospeech_v1.services.text_to_speech.transports import TextToSpeechGrpcTransport

    endpoint = env.get("GOOGLE_TTS_ENDPOINT")
    if endpoint and is_loopback(endpoint):
        return TextToSpeechClient(transport=TextToSpeechGrpcTransport(channel=grpc.insecure_channel(endpoint)))
    if endpoint:
        return TextToSpeechClient(client_options={"api_endpoint": endpoint})
    return TextToSpeechClient()


class GoogleSynthesizer(Synthesizer):
    name = "google-tts"

    def __init__(self, client: Any, settings: GoogleTtsSettings, prefetch_threads: int = 4) -> None:
        from google.cloud import texttospeech_v1 as types

        self._t = types
        self._client = client
        self.settings = settings
        self._cache: dict[str, bytes] = {}
        # Prefetching the next sentence must not wait for the consumer: a small pool owned by
        # this synthesizer (an async generator cannot own a nursery across its yields).
        self._pool = concurrent.futures.ThreadPoolExecutor(prefetch_threads, thread_name_prefix="tts")

    # -- blocking calls (worker threads) ---------------------------------------------------------
    def _encoding(self) -> Any:
        return getattr(self._t.AudioEncoding, self.settings.encoding)

    def _to_pcm(self, audio: bytes) -> bytes:
        audio = strip_wav_header(audio)
        if self.settings.encoding == "MULAW":
            return ulaw_to_pcm16(audio)
        return audio[: len(audio) // 2 * 2]

    def synthesize_blocking(self, sentence: str) -> bytes:
        t = self._t
        try:
            response = self._client.synthesize_speech(
                input=t.SynthesisInput(text=sentence),
                voice=t.VoiceSelectionParams(language_code=self.settings.language, name=self.settings.voice),
                audio_config=t.AudioConfig(
                    audio_encoding=self._encoding(), sample_rate_hertz=8000,
                    speaking_rate=self.settings.speaking_rate, pitch=self.settings.pitch,
                ),
                timeout=self.settings.timeout_s,
                retry=None,
            )
        except Exception as exc:
            raise ProviderError(self.name, f"SynthesizeSpeech failed: {exc}") from exc
        return self._to_pcm(response.audio_content)

    def _stream_requests(self, text: str) -> Iterator[Any]:
        t = self._t
        config = t.StreamingSynthesizeConfig(
            voice=t.VoiceSelectionParams(language_code=self.settings.language, name=self.settings.voice),
            streaming_audio_config=t.StreamingAudioConfig(
                audio_encoding=self._encoding() if self.settings.encoding == "MULAW" else t.AudioEncoding.PCM,
                sample_rate_hertz=8000, speaking_rate=self.settings.speaking_rate,
            ),
        )
        yield t.StreamingSynthesizeRequest(streaming_config=config)
        # One input per sentence: the service starts voicing the first while reading the rest.
        for sentence in split_sentences(text):
            yield t.StreamingSynthesizeRequest(input=t.StreamingSynthesisInput(text=sentence))

    # -- async side ------------------------------------------------------------------------------
    async def warm(self, lines: list[str]) -> None:
        for line in lines:
            if line not in self._cache:
                self._cache[line] = b"".join([chunk async for chunk in self._fresh(line)])

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        cached = self._cache.get(text)
        if cached is not None:
            yield cached
            return
        async for chunk in self._fresh(text):
            yield chunk

    async def _fresh(self, text: str) -> AsyncIterator[bytes]:
        if self.settings.use_streaming:
            async for chunk in self._streamed(text):
                yield chunk
            return
        sentences = split_sentences(text)
        futures: list[concurrent.futures.Future[bytes]] = []
        try:
            for i, sentence in enumerate(sentences):
                # keep one sentence in flight ahead of the one being played
                while len(futures) <= min(i + 1, len(sentences) - 1):
                    futures.append(self._pool.submit(self.synthesize_blocking, sentences[len(futures)]))
                pcm = await trio.to_thread.run_sync(futures[i].result, abandon_on_cancel=True)
                if pcm:
                    yield pcm
        finally:
            for f in futures:
                f.cancel()  # barge-in: don't pay for sentences nobody will hear

    async def _streamed(self, text: str) -> AsyncIterator[bytes]:
        try:
            responses = await trio.to_thread.run_sync(
                lambda: self._client.streaming_synthesize(requests=self._stream_requests(text),
                                                          timeout=self.settings.timeout_s, retry=None))
        except Exception as exc:
            raise ProviderError(self.name, f"StreamingSynthesize failed: {exc}") from exc
        iterator = iter(responses)
        carry = b""
        try:
            while True:
                try:
                    response = await trio.to_thread.run_sync(next, iterator, _END, abandon_on_cancel=True)
                except Exception as exc:
                    raise ProviderError(self.name, f"StreamingSynthesize failed: {exc}") from exc
                if response is _END:
                    return
                audio = response.audio_content
                if self.settings.encoding == "MULAW":
                    pcm = ulaw_to_pcm16(audio)
                else:  # a chunk may end mid-sample: carry the odd byte to the next one
                    audio = carry + audio
                    cut = len(audio) // 2 * 2
                    pcm, carry = audio[:cut], audio[cut:]
                if pcm:
                    yield pcm
        finally:
            cancel = getattr(responses, "cancel", None)
            if cancel is not None:
                cancel()
