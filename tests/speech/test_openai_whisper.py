"""OpenAI transcription (official openai client) against the fake HTTP endpoint, and the
failover from the Google stream to it mid-call."""
import grpc
import pytest
import trio

from fake_google import Fault
from telemetry import metrics
from speech.base import ProviderError
from speech.failover import FailoverRecognizer
from speech.google_stt import GoogleSttSettings, GoogleStreamingRecognizer, make_speech_client
from speech.openai_whisper import OpenAIWhisperRecognizer, make_client
from tone_words import silence, word_audio


def openai_rec(fake, **kw):
    return OpenAIWhisperRecognizer(make_client("sk-test", fake.base_url, timeout_s=2.0), "he-IL", **kw)


async def feed(rec, pcm):
    for i in range(0, len(pcm), 320):
        rec.push(pcm[i : i + 320])


async def test_uploads_the_utterance_as_16k_wav(fake_openai):
    rec = openai_rec(fake_openai, preroll_ms=300)
    await feed(rec, word_audio(900) + silence(2000))  # before the utterance: not sent
    onset = 2200
    await feed(rec, word_audio(1200) + silence(60) + word_audio(1500) + silence(420))
    result = await rec.end_utterance(onset, onset + 880)
    assert result.text == "w1200 w1500" and result.provider == "openai-whisper" and result.confidence == 1.0
    req = fake_openai.requests[-1]
    assert (req["rate"], req["channels"], req["language"], req["model"]) == (16000, 1, "he", "whisper-1")
    assert req["seconds"] == pytest.approx(1.18, abs=0.01)  # onset - preroll .. EOU


async def test_http_error_is_a_provider_error(fake_openai):
    fake_openai.status = 500
    rec = openai_rec(fake_openai)
    await feed(rec, word_audio(300) + silence(400))
    with pytest.raises(ProviderError, match="openai-whisper"):
        await rec.end_utterance(0, 600)


async def test_google_failure_mid_call_goes_to_openai_and_the_call_carries_on(fake_google, fake_openai):
    fake_google.speech.faults = [Fault(stream=2, after_ms=100, code=grpc.StatusCode.PERMISSION_DENIED, sticky=True)]
    google = GoogleStreamingRecognizer(
        make_speech_client({"GOOGLE_SPEECH_ENDPOINT": fake_google.endpoint}),
        GoogleSttSettings(backoff_s=(0.01,)), "he-IL", log=lambda *a, **k: None)
    logs = []
    rec = FailoverRecognizer(google, openai_rec(fake_openai), stall_s=1.0,
                             log=lambda ev, *a, **kw: logs.append((ev, kw)))
    switches0 = metrics.provider_fallbacks_total.labels(kind="asr")._value.get()
    results = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        await trio.sleep(0)
        now = 0
        for words in ([100, 200], [300, 400], [500]):
            await feed(rec, silence(600))
            onset = now + 600
            rec.begin_utterance(onset)
            pcm = b"".join(word_audio(w * 10) + silence(60) for w in words) + silence(420)
            await feed(rec, pcm)
            await trio.sleep(0.05)
            now = onset + len(pcm) // 16
            results.append(await rec.end_utterance(onset, now))
        nursery.cancel_scope.cancel()
    assert [r.text for r in results] == ["w1000 w2000", "w3000 w4000", "w5000"]
    assert [r.provider for r in results] == ["google", "openai-whisper", "openai-whisper"]
    assert metrics.provider_fallbacks_total.labels(kind="asr")._value.get() - switches0 == 2
    assert [kw["to"] for ev, kw in logs if ev == "PROVIDER_SWITCH"] == ["openai-whisper"] * 2
