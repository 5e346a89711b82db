"""The two Google Speech API versions as request builders / result parsers.

The streaming recognizer does the same thing over both; only the messages differ:
v1 (speech_v1, the default) and v2 (speech_v2: recognizers, chirp_3 / telephony models,
regional endpoints). Results come back as plain :class:`Result` values in stream time.
"""
from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import grpc


@dataclass(frozen=True, slots=True)
class Result:
    is_final: bool
    transcript: str
    confidence: float
    words: tuple[tuple[str, int, int], ...]  # (word, start_ms, end_ms) relative to the stream
    end_ms: int


def _ms(value: Any) -> int:
    return int(value.total_seconds() * 1000) if isinstance(value, dt.timedelta) else 0


class _SpeechApi:
    """What v1 and v2 share; they differ only in field and module names."""

    version: str
    _module: str  # google.cloud.speech_v1 / speech_v2
    _audio_field: str  # audio_content / audio
    _word_times: tuple[str, str]  # (start_time, end_time) / (start_offset, end_offset)
    _result_end: str  # result_end_time / result_end_offset
    _first: Any
    t: Any

    def config_request(self, groups: Sequence[tuple[Sequence[str], float]] = ()) -> Any:
        """The stream's first message; ``groups`` are the phrase hints of the question just
        asked ((phrases, boost) each), on top of the standing ones."""
        if not groups:
            return self._first
        return self._with_groups(tuple((tuple(p), b) for p, b in groups))

    def _with_groups(self, groups: tuple[tuple[tuple[str, ...], float], ...]) -> Any:
        raise NotImplementedError

    def audio_request(self, audio: bytes) -> Any:
        return self.t.StreamingRecognizeRequest(**{self._audio_field: audio})

    def results(self, response: Any) -> list[Result]:
        start, end = self._word_times
        out = []
        for r in response.results:
            if not r.alternatives:
                continue
            a = r.alternatives[0]
            words = tuple((w.word, _ms(getattr(w, start)), _ms(getattr(w, end))) for w in a.words)
            out.append(Result(r.is_final, a.transcript.strip(), a.confidence or 0.0, words,
                              _ms(getattr(r, self._result_end))))
        return out

    @classmethod
    def make_client(cls, endpoint: str | None, insecure: bool) -> Any:
        services = importlib.import_module(f"{cls._module}.services.speech")
        transports = importlib.import_module(f"{cls._module}.services.speech.transports")
        if endpoint and insecure:  # a local fake: plaintext, no credentials (google.md)
            return services.SpeechClient(transport=transports.SpeechGrpcTransport(channel=grpc.insecure_channel(endpoint)))
        return services.SpeechClient(client_options={"api_endpoint": endpoint} if endpoint else None)


class SpeechV1(_SpeechApi):
    version = "v1"
    _module = "google.cloud.speech_v1"
    _audio_field = "audio_content"
    _word_times = ("start_time", "end_time")
    _result_end = "result_end_time"

    def __init__(self, language: str, model: str, use_enhanced: bool, hints: Iterable[str], boost: float) -> None:
        from google.cloud.speech_v1 import types

        self.t = types
        self._args = (language, model, use_enhanced)
        self._hints = (tuple(hints), boost)
        self._first = self._request(())

    def _request(self, groups: tuple[tuple[tuple[str, ...], float], ...]) -> Any:
        t = self.t
        language, model, use_enhanced = self._args
        contexts = [t.SpeechContext(phrases=list(p), boost=b) for p, b in (self._hints, *groups) if p]
        config = t.RecognitionConfig(
            encoding=t.RecognitionConfig.AudioEncoding.LINEAR16,  # never μ-law to the ASR
            sample_rate_hertz=8000,
            audio_channel_count=1,
            language_code=language,
            model=model,
            use_enhanced=use_enhanced,
            enable_automatic_punctuation=True,
            enable_word_time_offsets=True,  # word times drive de-duplication across streams
            speech_contexts=contexts,
        )
        return t.StreamingRecognizeRequest(
            streaming_config=t.StreamingRecognitionConfig(config=config, interim_results=True))

    def _with_groups(self, groups: tuple[tuple[tuple[str, ...], float], ...]) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        if groups not in cache:
            if len(cache) >= 32:
                cache.clear()
            cache[groups] = self._request(groups)
        return cache[groups]



class SpeechV2(_SpeechApi):
    version = "v2"
    _module = "google.cloud.speech_v2"
    _audio_field = "audio"
    _word_times = ("start_offset", "end_offset")
    _result_end = "result_end_offset"

    def __init__(self, language: str, model: str, hints: Iterable[str], boost: float, recognizer: str) -> None:
        from google.cloud.speech_v2 import types

        self.t = types
        self._args = (language, model)
        self._hints = (tuple(hints), boost)
        self.recognizer = recognizer
        self._first = self._request(())

    def _request(self, groups: tuple[tuple[tuple[str, ...], float], ...]) -> Any:
        t = self.t
        language, model = self._args
        seen: dict[str, float] = {}
        for phrases, boost in (self._hints, *groups):  # one phrase once, at its highest boost
            for phrase in phrases:
                seen[phrase] = max(boost, seen.get(phrase, 0.0))
        config = t.RecognitionConfig(
            explicit_decoding_config=t.ExplicitDecodingConfig(
                encoding=t.ExplicitDecodingConfig.AudioEncoding.LINEAR16, sample_rate_hertz=8000,
                audio_channel_count=1),
            language_codes=[language],
            model=model,
            features=t.RecognitionFeatures(enable_word_time_offsets=True, enable_automatic_punctuation=True),
            adaptation=t.SpeechAdaptation(phrase_sets=[t.SpeechAdaptation.AdaptationPhraseSet(
                inline_phrase_set=t.PhraseSet(phrases=[t.PhraseSet.Phrase(value=v, boost=b) for v, b in seen.items()]))]),
        )
        return t.StreamingRecognizeRequest(
            recognizer=self.recognizer,
            streaming_config=t.StreamingRecognitionConfig(
                config=config, streaming_features=t.StreamingRecognitionFeatures(interim_results=True)),
        )

    def _with_groups(self, groups: tuple[tuple[tuple[str, ...], float], ...]) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        if groups not in cache:
            if len(cache) >= 32:
                cache.clear()
            cache[groups] = self._request(groups)
        return cache[groups]

