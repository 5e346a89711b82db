"""Fake Google Speech-to-Text v1 and Text-to-Speech v1 servers: real grpc.server on
127.0.0.1 speaking the real protos (the generated types' serialize / deserialize), so the
official clients talk to them unchanged.

Speech "recognizes" the tone-word language of tone_words.py exactly, sends interim and final
results with word time offsets, enforces a stream audio limit (scaled down in tests), and can
inject errors and delays. TTS renders a deterministic tone per character.

Scripted mode (``FakeSpeech(script=[...])``): for calls with real (espeak-ng) caller speech.
Each half-closed stream that heard voice answers with the next scripted transcript, by
order, whatever the audio said; its words are spread over the stream's last voiced run, so
their offsets fall inside the utterance like Google's do.
"""
from __future__ import annotations

import datetime as dt
import io
import threading
import time
import warnings
import wave
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import numpy as np
from google.cloud import speech_v1 as sp
from google.cloud import speech_v2 as sp2
from google.cloud import texttospeech_v1 as tts

from tone_words import WordDecoder

with warnings.catch_warnings():  # audioop: the reference μ-law encoder, gone in 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

HEBREW = {"iw-IL", "he-IL"}


def _max_boosts(pairs) -> dict[str, float]:
    out: dict[str, float] = {}
    for phrase, boost in pairs:
        out[phrase] = max(boost, out.get(phrase, 0.0))
    return out


def _td(ms: int) -> dt.timedelta:
    return dt.timedelta(milliseconds=ms)


@dataclass
class StreamRecord:
    number: int
    language: str = ""
    model: str = ""
    encoding: str = ""
    sample_rate: int = 0
    interim: bool = False
    phrases: list[str] = field(default_factory=list)
    boosts: dict[str, float] = field(default_factory=dict)  # phrase -> its (highest) boost
    api: str = "v1"
    recognizer: str = ""
    audio_ms: int = 0
    words: list[str] = field(default_factory=list)
    half_closed: bool = False
    aborted: str = ""
    audio: bytearray = field(default_factory=bytearray)  # kept only with keep_audio=True


@dataclass
class Fault:
    stream: int  # 1-based stream number
    after_ms: int  # audio received before the fault
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    stall_s: float = 0.0  # >0: stall instead of failing
    sticky: bool = False  # also every later stream (an outage, not a blip)


VOICED_RMS = 300.0  # scripted mode: a 20 ms frame above this RMS is voice


def _voiced_frames(pcm: bytes) -> list[bool]:
    s = np.frombuffer(pcm[: len(pcm) // 320 * 320], dtype="<i2").astype(np.float64).reshape(-1, 160)
    return list(np.sqrt((s**2).mean(axis=1)) > VOICED_RMS)


def _last_voiced_run(voiced: list[bool], gap_frames: int = 15) -> tuple[int, int] | None:
    """(start_ms, end_ms) of the last run of voice, pauses shorter than ``gap_frames`` inside."""
    last = next((i for i in range(len(voiced) - 1, -1, -1) if voiced[i]), None)
    if last is None:
        return None
    start, gap = last, 0
    for i in range(last - 1, -1, -1):
        if voiced[i]:
            start, gap = i, 0
        else:
            gap += 1
            if gap >= gap_frames:
                break
    return start * 20, (last + 1) * 20


class FakeSpeech:
    def __init__(self, limit_ms: int = 305_000, final_delay_s: float = 0.0,
                 script: list[str] | None = None, keep_audio: bool = False) -> None:
        self.limit_ms = limit_ms
        self.final_delay_s = final_delay_s
        self.script = list(script) if script is not None else None  # scripted mode: finals by order
        self.keep_audio = keep_audio
        self.faults: list[Fault] = []
        self.streams: list[StreamRecord] = []
        self._lock = threading.Lock()

    def handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        return (
            grpc.method_handlers_generic_handler("google.cloud.speech.v1.Speech", {
                "StreamingRecognize": grpc.stream_stream_rpc_method_handler(
                    self.streaming_recognize,
                    request_deserializer=sp.StreamingRecognizeRequest.deserialize,
                    response_serializer=sp.StreamingRecognizeResponse.serialize,
                )}),
            grpc.method_handlers_generic_handler("google.cloud.speech.v2.Speech", {
                "StreamingRecognize": grpc.stream_stream_rpc_method_handler(
                    self.streaming_recognize_v2,
                    request_deserializer=sp2.StreamingRecognizeRequest.deserialize,
                    response_serializer=sp2.StreamingRecognizeResponse.serialize,
                )}),
        )

    def streaming_recognize_v2(self, requests, context):
        """v2: same recognition, v2 messages (recognizer name, explicit decoding, offsets)."""
        first = next(requests)
        cfg = first.streaming_config.config
        dec = cfg.explicit_decoding_config
        if not first.recognizer.startswith("projects/") or "/recognizers/" not in first.recognizer:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid recognizer name")
        if dec.encoding != sp2.ExplicitDecodingConfig.AudioEncoding.LINEAR16 or dec.sample_rate_hertz != 8000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected explicit LINEAR16 at 8000 Hz")
        setup = dict(api="v2", recognizer=first.recognizer, language=",".join(cfg.language_codes), model=cfg.model,
                     encoding=dec.encoding.name, sample_rate=dec.sample_rate_hertz,
                     interim=first.streaming_config.streaming_features.interim_results,
                     phrases=[p.value for ps in cfg.adaptation.phrase_sets for p in ps.inline_phrase_set.phrases],
                     boosts=_max_boosts((p.value, p.boost) for ps in cfg.adaptation.phrase_sets
                                        for p in ps.inline_phrase_set.phrases))
        audio = (r.audio for r in requests)
        for kind, word, start, end in self._recognize(setup, audio, context):
            if kind == "final":
                info = sp2.WordInfo(word=word, start_offset=_td(start), end_offset=_td(end))
                alt = sp2.SpeechRecognitionAlternative(transcript=word, confidence=0.93, words=[info])
                yield sp2.StreamingRecognizeResponse(results=[sp2.StreamingRecognitionResult(
                    alternatives=[alt], is_final=True, result_end_offset=_td(end))])
            else:
                yield sp2.StreamingRecognizeResponse(results=[sp2.StreamingRecognitionResult(
                    alternatives=[sp2.SpeechRecognitionAlternative(transcript=word)], is_final=False,
                    result_end_offset=_td(end))])

    @staticmethod
    def _final(word: str, start: int, end: int) -> sp.StreamingRecognizeResponse:
        info = sp.WordInfo(word=word, start_time=_td(start), end_time=_td(end))
        alt = sp.SpeechRecognitionAlternative(transcript=word, confidence=0.93, words=[info])
        return sp.StreamingRecognizeResponse(
            results=[sp.StreamingRecognitionResult(alternatives=[alt], is_final=True, result_end_time=_td(end))]
        )

    def streaming_recognize(self, requests, context):
        first = next(requests)
        cfg = first.streaming_config.config
        if cfg.encoding != sp.RecognitionConfig.AudioEncoding.LINEAR16 or cfg.sample_rate_hertz != 8000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected LINEAR16 at 8000 Hz")
        if cfg.language_code in HEBREW and cfg.model == "latest_short":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "The requested model is currently not supported for language : iw-IL.")
        setup = dict(language=cfg.language_code, model=cfg.model, encoding=cfg.encoding.name,
                     sample_rate=cfg.sample_rate_hertz, interim=first.streaming_config.interim_results,
                     phrases=[p for c in cfg.speech_contexts for p in c.phrases],
                     boosts=_max_boosts((p, c.boost) for c in cfg.speech_contexts for p in c.phrases))
        audio = (r.audio_content for r in requests)
        for kind, word, start, end in self._recognize(setup, audio, context):
            if kind == "final":
                yield self._final(word, start, end)
            else:
                alt = sp.SpeechRecognitionAlternative(transcript=word)
                yield sp.StreamingRecognizeResponse(results=[sp.StreamingRecognitionResult(
                    alternatives=[alt], is_final=False, stability=0.5, result_end_time=_td(end))])

    def _recognize(self, setup, audio_chunks, context):
        """Version-independent core: yields ("final"|"partial", word, start_ms, end_ms)."""
        with self._lock:
            rec = StreamRecord(number=len(self.streams) + 1, **setup)
            self.streams.append(rec)
        faults = [f for f in self.faults if f.stream == rec.number or (f.sticky and rec.number > f.stream)]
        decoder = WordDecoder()
        voiced: list[bool] = []  # scripted mode
        partial_for = None
        for pcm in audio_chunks:
            rec.audio_ms += len(pcm) // 16
            if self.keep_audio:
                rec.audio += pcm
            if rec.audio_ms > self.limit_ms:
                rec.aborted = "OUT_OF_RANGE"
                context.abort(grpc.StatusCode.OUT_OF_RANGE,
                              f"Exceeded maximum allowed stream duration of {self.limit_ms // 1000} seconds.")
            for f in list(faults):
                if rec.audio_ms >= f.after_ms:
                    faults.remove(f)
                    if f.stall_s:
                        time.sleep(f.stall_s)
                    else:
                        rec.aborted = f.code.name
                        context.abort(f.code, "injected fault")
            if self.script is not None:
                voiced += _voiced_frames(pcm)
                continue
            for word, start, end in decoder.feed(pcm):
                rec.words.append(word)
                yield "final", word, start, end
            current = decoder.in_word()
            if current and partial_for != (current, decoder.start):
                partial_for = (current, decoder.start)
                yield "partial", current, decoder.start * 20, decoder.frames * 20
        rec.half_closed = True
        if self.final_delay_s:
            time.sleep(self.final_delay_s)
        if self.script is not None:
            yield from self._scripted_final(rec, voiced)
            return
        for word, start, end in decoder.finish():
            rec.words.append(word)
            yield "final", word, start, end


    def _scripted_final(self, rec: StreamRecord, voiced: list[bool]):
        run = _last_voiced_run(voiced)
        if run is None:
            return  # nothing was said to this stream: no result, like Google
        with self._lock:
            text = self.script.pop(0) if self.script else ""
        words = text.split()
        start, end = run
        step = max(1, (end - start) // max(1, len(words)))
        for i, word in enumerate(words):
            rec.words.append(word)
            yield "final", word, start + i * step, min(end, start + (i + 1) * step)


def tone_pcm(text: str, rate: int, ms_per_char: int = 40) -> np.ndarray:
    n = max(1, len(text)) * ms_per_char * rate // 1000
    t = np.arange(n) / rate
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2")


def _wav(payload: bytes, rate: int, fmt_tag: int, width: int) -> bytes:
    if fmt_tag == 1:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(width)
            w.setframerate(rate)
            w.writeframes(payload)
        return buf.getvalue()
    # non-PCM (μ-law, tag 7): wave can't write it; build it like Google does (18-byte fmt + fact)
    fmt = fmt_tag.to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little") \
        + rate.to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little") + b"\0\0"
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt \
        + b"fact" + (4).to_bytes(4, "little") + len(payload).to_bytes(4, "little") \
        + b"data" + len(payload).to_bytes(4, "little") + payload
    return b"RIFF" + len(body).to_bytes(4, "little") + body


class FakeTts:
    def __init__(self, delay_s: float = 0.0, per_char_s: float = 0.0, ms_per_char: int = 40) -> None:
        self.delay_s = delay_s
        self.per_char_s = per_char_s
        self.ms_per_char = ms_per_char  # audio length made per character (shorter: faster calls)
        self.requests: list[tuple[str, str, str, int]] = []  # (text, voice, encoding, rate)
        self.languages: list[str] = []  # voice.language_code of each request, in order
        self.fail_next = 0

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "google.cloud.texttospeech.v1.TextToSpeech",
            {
                "SynthesizeSpeech": grpc.unary_unary_rpc_method_handler(
                    self.synthesize,
                    request_deserializer=tts.SynthesizeSpeechRequest.deserialize,
                    response_serializer=tts.SynthesizeSpeechResponse.serialize,
                ),
                "StreamingSynthesize": grpc.stream_stream_rpc_method_handler(
                    self.streaming_synthesize,
                    request_deserializer=tts.StreamingSynthesizeRequest.deserialize,
                    response_serializer=tts.StreamingSynthesizeResponse.serialize,
                ),
            },
        )

    def _work(self, text: str) -> None:
        time.sleep(self.delay_s + self.per_char_s * len(text))

    def synthesize(self, req, context):
        if self.fail_next:
            self.fail_next -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected fault")
        text = req.input.text or req.input.ssml
        enc = req.audio_config.audio_encoding
        rate = req.audio_config.sample_rate_hertz or 24000
        self.requests.append((text, req.voice.name, enc.name, rate))
        self.languages.append(req.voice.language_code)
        if not req.voice.language_code:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "voice.language_code is required")
        self._work(text)
        pcm = tone_pcm(text, rate, self.ms_per_char)
        if enc == tts.AudioEncoding.MULAW:
            audio = _wav(audioop.lin2ulaw(pcm.tobytes(), 2), rate, 7, 1)
        elif enc == tts.AudioEncoding.LINEAR16:
            audio = _wav(pcm.tobytes(), rate, 1, 2)  # Google's LINEAR16 carries a WAV header too
        else:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"fake supports LINEAR16/MULAW, not {enc.name}")
        return tts.SynthesizeSpeechResponse(audio_content=audio)

    def streaming_synthesize(self, requests, context):
        first = next(requests)
        cfg = first.streaming_config
        if "Chirp3-HD" not in cfg.voice.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "streaming synthesis needs a Chirp 3 HD voice")
        enc = cfg.streaming_audio_config.audio_encoding
        rate = cfg.streaming_audio_config.sample_rate_hertz or 24000
        for req in requests:
            text = req.input.text
            self.requests.append((text, cfg.voice.name, enc.name, rate))
            self.languages.append(cfg.voice.language_code)
            time.sleep(self.delay_s)
            pcm = tone_pcm(text, rate, self.ms_per_char).tobytes()
            if enc == tts.AudioEncoding.MULAW:
                pcm = audioop.lin2ulaw(pcm, 2)
            step = max(2, len(pcm) // 3 // 2 * 2)
            for i in range(0, len(pcm), step):
                time.sleep(self.per_char_s * len(text) / 3)  # audio is made progressively
                yield tts.StreamingSynthesizeResponse(audio_content=pcm[i : i + step])


class FakeGoogle:
    """Both services on one loopback port."""

    def __init__(self, speech: FakeSpeech | None = None, tts_: FakeTts | None = None) -> None:
        self.speech = speech or FakeSpeech()
        self.tts = tts_ or FakeTts()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        self.server.add_generic_rpc_handlers((*self.speech.handlers(), self.tts.handler()))
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{port}"

    def __enter__(self) -> "FakeGoogle":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop(grace=None)
