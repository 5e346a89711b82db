"""TTS time-to-first-audio and per-sentence adapter cost, each with a baseline from the same run.

- espeak-ng: streamed through a Trio process vs the blocking render() in a worker thread;
- Google TTS on the fake gRPC server: adapter (first chunk, WAV strip, decode) vs the raw
  official client call; LINEAR16 vs MULAW end to end to μ-law frames on the wire; streaming
  synthesis (Chirp 3 HD) vs SynthesizeSpeech.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_speech_tts.py -s -o addopts="")
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pytest
import trio

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests" / "speech"))

from fake_google import FakeGoogle  # noqa: E402

from speech.espeak import render  # noqa: E402
from speech.espeak_tts import EspeakSynthesizer  # noqa: E402
from speech.google_tts import GoogleSynthesizer, GoogleTtsSettings, make_tts_client  # noqa: E402

from bench.support import pick  # noqa: E402

SENTENCE_HE = "מצוין, ובאיזה אזור בתל אביב אתם מחפשים דירה לקנייה?"
ROUNDS = pick(25, 2)


def ttfa_ms(synth, text: str, rounds: int = ROUNDS) -> tuple[float, float]:
    """(median time to first chunk, median time to last chunk), ms."""
    first, total = [], []

    async def main() -> None:
        for _ in range(rounds):
            t0 = time.perf_counter()
            got_first = None
            async for _chunk in synth.synthesize(text):
                if got_first is None:
                    got_first = time.perf_counter() - t0
            first.append(got_first * 1000)
            total.append((time.perf_counter() - t0) * 1000)

    trio.run(main)
    return statistics.median(first), statistics.median(total)


def report(benchmark, what: str, ours: float, base: float, base_name: str) -> None:
    print(f"\n[speech] tts: {what}: {ours:.3f} ms vs {base_name} {base:.3f} ms -> x{ours / base:.3f}")
    benchmark.extra_info.update(ours_ms=round(ours, 3), baseline_ms=round(base, 3), ratio=round(ours / base, 3))


def test_espeak_time_to_first_audio(benchmark) -> None:
    synth = EspeakSynthesizer("he-IL")
    ours, ours_total = ttfa_ms(synth, SENTENCE_HE)

    async def blocking() -> None:
        await trio.to_thread.run_sync(render, SENTENCE_HE, "he-IL")

    def base_once() -> float:
        t0 = time.perf_counter()
        trio.run(blocking)
        return (time.perf_counter() - t0) * 1000

    base = statistics.median(base_once() for _ in range(ROUNDS))
    benchmark.pedantic(base_once, rounds=3)
    report(benchmark, "espeak-ng time to first audio (streamed)", ours, base, "render() in a thread")
    print(f"[speech] tts: espeak-ng whole sentence streamed: {ours_total:.2f} ms")


@pytest.fixture(scope="module")
def fake():
    with FakeGoogle() as f:
        yield f


def _raw_ms(client, encoding: str, text: str) -> float:
    from google.cloud import texttospeech_v1 as t

    def once() -> float:
        t0 = time.perf_counter()
        client.synthesize_speech(
            input=t.SynthesisInput(text=text),
            voice=t.VoiceSelectionParams(language_code="he-IL", name="he-IL-Wavenet-A"),
            audio_config=t.AudioConfig(audio_encoding=getattr(t.AudioEncoding, encoding), sample_rate_hertz=8000),
        )
        return (time.perf_counter() - t0) * 1000

    once()
    return statistics.median(once() for _ in range(ROUNDS))


@pytest.mark.parametrize("encoding", ["LINEAR16", "MULAW"])
def test_google_tts_adapter_per_sentence(benchmark, fake, encoding) -> None:
    client = make_tts_client({"GOOGLE_TTS_ENDPOINT": fake.endpoint})
    synth = GoogleSynthesizer(client, GoogleTtsSettings(encoding=encoding))
    ours, _ = ttfa_ms(synth, SENTENCE_HE)
    base = _raw_ms(client, encoding, SENTENCE_HE)
    benchmark.pedantic(lambda: ttfa_ms(synth, SENTENCE_HE, rounds=1), rounds=3)
    report(benchmark, f"google {encoding} time to first audio (fake server)", ours, base, "raw client call")


def test_google_tts_linear16_vs_mulaw_end_to_end(benchmark, fake) -> None:
    """To μ-law 20 ms frames on the wire: LINEAR16 needs one encode; MULAW arrives smaller but
    the PCM16 interface decodes it and the session encodes it again."""
    from native.codec import pcm16_to_ulaw

    client = make_tts_client({"GOOGLE_TTS_ENDPOINT": fake.endpoint})
    text = SENTENCE_HE * 3  # one long sentence, ~6 s of audio at the fake's 40 ms/char
    figures = {}
    for encoding in ("LINEAR16", "MULAW"):
        synth = GoogleSynthesizer(client, GoogleTtsSettings(encoding=encoding))

        async def wire() -> None:
            async for chunk in synth.synthesize(text):
                pcm16_to_ulaw(chunk)

        def once() -> float:
            t0 = time.perf_counter()
            trio.run(wire)
            return (time.perf_counter() - t0) * 1000

        once()
        figures[encoding] = statistics.median(once() for _ in range(ROUNDS))
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, "end to end to μ-law, MULAW", figures["MULAW"], figures["LINEAR16"], "LINEAR16")


def test_google_streaming_vs_unary_first_audio(benchmark, fake) -> None:
    fake.tts.per_char_s = 0.002  # a server that takes time to make audio (~0.1 s per sentence)
    try:
        client = make_tts_client({"GOOGLE_TTS_ENDPOINT": fake.endpoint})
        streaming = GoogleSynthesizer(client, GoogleTtsSettings(voice="he-IL-Chirp3-HD-Aoede"))
        unary = GoogleSynthesizer(client, GoogleTtsSettings(voice="he-IL-Wavenet-A"))
        text = "שלום! " + SENTENCE_HE
        s_first, _ = ttfa_ms(streaming, text, rounds=pick(10, 2))
        u_first, _ = ttfa_ms(unary, text, rounds=pick(10, 2))
        benchmark.pedantic(lambda: None, rounds=1)
        report(benchmark, "first audio, Chirp3-HD streaming (fake, one input per sentence)", s_first, u_first,
               "unary sentence-by-sentence")
    finally:
        fake.tts.per_char_s = 0.0


def test_cached_line_first_audio(benchmark, fake) -> None:
    from dialog.base import CLARIFY_HE

    synth = GoogleSynthesizer(make_tts_client({"GOOGLE_TTS_ENDPOINT": fake.endpoint}), GoogleTtsSettings())
    cold, _ = ttfa_ms(synth, CLARIFY_HE, rounds=pick(10, 2))
    trio.run(synth.warm, [CLARIFY_HE])
    warm, _ = ttfa_ms(synth, CLARIFY_HE, rounds=pick(10, 2))
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, "cached clarify line, first audio", warm, cold, "uncached")
