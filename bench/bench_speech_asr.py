"""ASR adapter cost per 20 ms frame, EOU -> final latency, and 8k -> 16k resampling.

Each figure prints a ratio against a baseline measured in the same run:
- push() per frame vs the bare ring-buffer copy every recognizer needs anyway;
- EOU -> final: Google adapter over the fake gRPC server vs the official client alone doing the
  same work: a stream opened before the utterance, the audio sent as it is spoken (100 ms
  requests, same pace), and the clock started at the half-close that ends the utterance; the
  adapter's own share is the difference. Local tiny.en alone (no baseline);
- soxr 8k -> 16k (band-limited) vs numpy's cheapest 2x linear upsample (vectorised; no
  anti-imaging filter, so not the same quality: the row says what soxr's filter costs).
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_speech_asr.py -s -o addopts="")
"""
from __future__ import annotations

import statistics
import sys
import time
import timeit
from pathlib import Path

import numpy as np
import pytest
import trio

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests" / "speech"))

from fake_google import FakeGoogle  # noqa: E402
from tone_words import silence, word_audio  # noqa: E402

from speech.audio import FrameRing, to_whisper_input  # noqa: E402
from speech.google_stt import GoogleSttSettings, GoogleStreamingRecognizer, make_speech_client  # noqa: E402

from bench.support import pick  # noqa: E402

FRAME = np.full(160, 1234, dtype="<i2").tobytes()


def per_call_ns(fn, *args) -> float:
    timer = timeit.Timer(lambda: fn(*args))
    number = max(1, int(pick(20000, 200) / max(timer.timeit(200) / 200 * 1e6, 1e-3)))
    return min(timer.repeat(pick(5, 1), number)) / number * 1e9


def report(benchmark, area: str, what: str, ours: float, base: float, unit: str, base_name: str) -> None:
    print(f"\n[speech] {area}: {what}: {ours:.1f} {unit} vs {base_name} {base:.1f} {unit} -> x{ours / base:.2f}")
    benchmark.extra_info.update(ours=round(ours, 2), baseline=round(base, 2), ratio=round(ours / base, 3), unit=unit)


@pytest.fixture(scope="module")
def fake():
    with FakeGoogle() as f:
        yield f


def test_push_per_frame_google(benchmark, fake) -> None:
    """Per-frame cost of the Google adapter while its stream is open (batching into 100 ms
    requests, restart check), vs the ring copy alone."""
    results = {}

    async def main() -> None:
        rec = GoogleStreamingRecognizer(make_speech_client({"GOOGLE_SPEECH_ENDPOINT": fake.endpoint}),
                                        GoogleSttSettings(), "he-IL", log=lambda *a, **k: None)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rec.run)
            await trio.sleep(0.05)
            results["ours"] = per_call_ns(rec.push, FRAME)
            benchmark.pedantic(rec.push, args=(FRAME,), rounds=2000, iterations=5)
            nursery.cancel_scope.cancel()

    trio.run(main)
    ring = FrameRing(20_000)
    report(benchmark, "asr", "google push() per 20 ms frame", results["ours"], per_call_ns(ring.push, FRAME),
           "ns", "ring copy")


def test_push_per_frame_whisper(benchmark) -> None:
    from speech.whisper_local import WhisperRecognizer

    rec = WhisperRecognizer(model=None, language="en-US")
    benchmark(rec.push, FRAME)
    ring = FrameRing(20_000)
    report(benchmark, "asr", "whisper push() per 20 ms frame", per_call_ns(rec.push, FRAME),
           per_call_ns(ring.push, FRAME), "ns", "ring copy")


def _utterance() -> bytes:
    return b"".join(word_audio(100 + i) + silence(40) for i in range(8)) + silence(420)


def test_eou_to_final_google_fake(benchmark, fake) -> None:
    """EOU -> final transcript through the adapter (half-close at EOU) vs a raw gRPC stream of
    the same audio made with the official client directly."""
    from google.cloud.speech_v1 import types as t

    pcm = _utterance()
    lat: list[float] = []

    async def main() -> None:
        rec = GoogleStreamingRecognizer(make_speech_client({"GOOGLE_SPEECH_ENDPOINT": fake.endpoint}),
                                        GoogleSttSettings(), "he-IL", log=lambda *a, **k: None)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rec.run)
            await trio.sleep(0.05)
            now = 0
            for _ in range(pick(30, 2)):
                onset = now
                rec.begin_utterance(onset)
                for i in range(0, len(pcm), 320):
                    rec.push(pcm[i : i + 320])
                    if i % 1600 == 0:
                        await trio.sleep(0.002)  # feed at ~10x real time so the stream keeps up
                now += len(pcm) // 16
                await trio.sleep(0.02)
                t0 = time.perf_counter()
                result = await rec.end_utterance(onset, now)
                lat.append((time.perf_counter() - t0) * 1000)
                assert len(result.text.split()) == 8
            nursery.cancel_scope.cancel()

    trio.run(main)
    client = make_speech_client({"GOOGLE_SPEECH_ENDPOINT": fake.endpoint})
    settings = GoogleSttSettings()
    config = t.StreamingRecognitionConfig(
        config=t.RecognitionConfig(encoding=t.RecognitionConfig.AudioEncoding.LINEAR16, sample_rate_hertz=8000,
                                   language_code="iw-IL", model=settings.model, use_enhanced=settings.use_enhanced),
        interim_results=True)

    def raw() -> float:
        """One utterance on a raw stream: open, feed at the adapter's pace, half-close at EOU
        (the clock starts there), stop when the stream has delivered its last final and closed."""
        import queue
        import threading

        q: queue.Queue = queue.Queue()
        final_at: list[float] = []

        def reqs():
            yield t.StreamingRecognizeRequest(streaming_config=config)
            while (chunk := q.get()) is not None:
                yield t.StreamingRecognizeRequest(audio_content=chunk)

        def consume() -> None:
            # The fake finalizes each word as it is decoded; what ends an utterance, for the
            # adapter too, is the stream closing after the half-close with the last finals.
            for _resp in client.streaming_recognize(requests=reqs()):
                pass
            final_at.append(time.perf_counter())

        worker = threading.Thread(target=consume)
        worker.start()
        for i in range(0, len(pcm), 1600):
            q.put(pcm[i : i + 1600])
            time.sleep(0.002)  # ~10x real time, as the adapter is fed above
        time.sleep(0.02)
        t0 = time.perf_counter()
        q.put(None)  # half-close: the end of the utterance
        worker.join()
        assert final_at
        return (final_at[0] - t0) * 1000

    raw()
    base = [raw() for _ in range(pick(30, 2))]
    benchmark.pedantic(raw, rounds=pick(5, 1))
    report(benchmark, "asr", "EOU -> final, google adapter on fake (median ms)", statistics.median(lat),
           statistics.median(base), "ms", "official client alone, same stream and pace, from half-close")


def test_eou_to_final_whisper_tiny(benchmark) -> None:
    from speech.espeak import render
    from speech.whisper_local import WhisperRecognizer, load_model, resolve_model

    model = load_model(resolve_model(None))
    rec = WhisperRecognizer(model, "en-US")
    pcm = render("I am looking for a three room apartment in Tel Aviv.", "en-US") + b"\0" * 6400
    pcm = pcm[: len(pcm) // 320 * 320]
    for i in range(0, len(pcm), 320):
        rec.push(pcm[i : i + 320])
    end = len(pcm) // 16

    def once() -> None:
        trio.run(rec.end_utterance, 0, end)

    def timed() -> float:
        t0 = time.perf_counter()
        once()
        return (time.perf_counter() - t0) * 1000

    once()
    benchmark.pedantic(once, rounds=5)
    ours = statistics.median(timed() for _ in range(pick(5, 1)))
    print(f"\n[speech] asr: EOU -> final, local tiny.en int8 on a {end / 1000:.1f} s utterance: {ours:.0f} ms "
          f"(x{ours / (end):.2f} of the audio length)")
    benchmark.extra_info.update(ms=round(ours, 1), audio_ms=end, rtf=round(ours / end, 3))


def test_resample_8k_to_16k(benchmark) -> None:
    pcm = (np.sin(np.arange(8000 * 3) * 0.3) * 8000).astype("<i2").tobytes()

    def linear(b: bytes) -> np.ndarray:  # the same float32 [-1, 1) output as to_whisper_input
        x = np.frombuffer(b, dtype="<i2").astype(np.float32) / 32768.0
        y = np.empty(2 * x.size, dtype=np.float32)
        y[0::2] = x
        y[1:-1:2] = 0.5 * (x[:-1] + x[1:])
        y[-1] = x[-1]
        return y

    benchmark(to_whisper_input, pcm)
    report(benchmark, "asr", "8k->16k of 3 s, soxr HQ (us)", per_call_ns(to_whisper_input, pcm) / 1000,
           per_call_ns(linear, pcm) / 1000, "us", "numpy vectorised linear upsample")
