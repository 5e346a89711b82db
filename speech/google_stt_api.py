"""The two Google Speech API versions as request builders / result parsers.

The streaming recognizer does the same thing over both; only the messages differ:
v1 (speech_v1, the default) and v2 (speech_v2: recognizers, chirp_3 / telephony models,
regional endpoints). Results come back as plain :class:`Result` values in stream time.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

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


class SpeechV1:
    version = "v1"

    def __init__(self, language: str, model: str, use_enhanced: bool, hints: Iterable[str], boost: float) -> None:
        from google.cloud.speech_v1 import types

        self.t = types
        t = types
        config = t.RecognitionConfig(
            encoding=t.RecognitionConfig.AudioEncoding.LINEAR16,  # never μ-law to the ASR
            sample_rate_hertz=8000,
            audio_channel_count=1,
            language_code=language,
            model=model,
            use_enhanced=use_enhanced,
            enable_automatic_punctuation=True,
            enable_word_time_offsets=True,  # word times drive de-duplication across streams
            speech_contexts=[t.SpeechContext(phrases=list(hints), boost=boost)],
        )
        self._first = t.StreamingRecognizeRequest(
            streaming_config=t.StreamingRecognitionConfig(config=config, interim_results=True))

    def config_request(self) -> Any:
        return self._first

    def audio_request(self, audio: bytes) -> Any:
        return self.t.StreamingRecognizeRequest(audio_content=audio)

    def results(self, response: Any) -> list[Result]:
        out = []
        for r in response.results:
            if not r.alternatives:
                continue
            a = r.alternatives[0]
            words = tuple((w.word, _ms(w.start_time), _ms(w.end_time)) for w in a.words)
            out.append(Result(r.is_final, a.transcript.strip(), a.confidence or 0.0, words, _ms(r.result_end_time)))
        return out

    @staticmethod
    def make_client(endpoint: str | None, insecure: bool) -> Any:
        from google.cloud.speech_v1.services.speech import SpeechClient
        from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

        if endpoint and insecure:
            return SpeechClient(transport=SpeechGrpcTransport(channel=grpc.insecure_channel(endpoint)))
        return SpeechClient(client_options={"api_endpoint": endpoint} if endpoint else None)


class SpeechV2:
    version = "v2"

    def __init__(self, language: str, model: str, hints: Iterable[str], boost: float, recognizer: str) -> None:
        from google.cloud.speech_v2 import types

        self.t = types
        t = types
        phrases = [t.PhraseSet.Phrase(value=h, boost=boost) for h in hints]
        config = t.RecognitionConfig(
            explicit_decoding_config=t.ExplicitDecodingConfig(
                encoding=t.ExplicitDecodingConfig.AudioEncoding.LINEAR16, sample_rate_hertz=8000,
                audio_channel_count=1),
            language_codes=[language],
            model=model,
            features=t.RecognitionFeatures(enable_word_time_offsets=True, enable_automatic_punctuation=True),
            adaptation=t.SpeechAdaptation(phrase_sets=[
                t.SpeechAdaptation.AdaptationPhraseSet(inline_phrase_set=t.PhraseSet(phrases=phrases))]),
        )
        self.recognizer = recognizer
        self._first = t.StreamingRecognizeRequest(
            recognizer=recognizer,
            streaming_config=t.StreamingRecognitionConfig(
                config=config, streaming_features=t.StreamingRecognitionFeatures(interim_results=True)),
        )

    def config_request(self) -> Any:
        return self._first

    def audio_request(self, audio: bytes) -> Any:
        return self.t.StreamingRecognizeRequest(audio=audio)

    def results(self, response: Any) -> list[Result]:
        out = []
        for r in response.results:
            if not r.alternatives:
                continue
            a = r.alternatives[0]
            words = tuple((w.word, _ms(w.start_offset), _ms(w.end_offset)) for w in a.words)
            out.append(Result(r.is_final, a.transcript.strip(), a.confidence or 0.0, words, _ms(r.result_end_offset)))
        return out

    @staticmethod
    def make_client(endpoint: str | None, insecure: bool) -> Any:
        from google.cloud.speech_v2.services.speech import SpeechClient
        from google.cloud.speech_v2.services.speech.transports import SpeechGrpcTransport

        if endpoint and insecure:
            return SpeechClient(transport=SpeechGrpcTransport(channel=grpc.insecure_channel(endpoint)))
        return SpeechClient(client_options={"api_endpoint": endpoint} if endpoint else None)
