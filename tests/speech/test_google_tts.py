"""Google TTS (real google-cloud-texttospeech client) against the fake TTS gRPC server."""
import numpy as np
import pytest
import trio

from dialog.base import CLARIFY_HE
from fake_google import tone_pcm
from native.config import ConfigError
from speech.base import ProviderError
from speech.google_tts import GoogleSynthesizer, GoogleTtsSettings, make_tts_client


def synth(fake, **kw):
    return GoogleSynthesizer(make_tts_client({"GOOGLE_TTS_ENDPOINT": fake.endpoint}), GoogleTtsSettings(**kw))


def expected(text):
    return tone_pcm(text, 8000)


@pytest.mark.parametrize("encoding", ["LINEAR16", "MULAW"])
async def test_sentences_come_back_as_8k_pcm_without_wav_header(fake_google, encoding):
    s = synth(fake_google, encoding=encoding)
    chunks = [c async for c in s.synthesize("שלום לך. מה התקציב?")]
    assert len(chunks) == 2
    for chunk, text in zip(chunks, ["שלום לך.", "מה התקציב?"]):
        got = np.frombuffer(chunk, dtype="<i2")
        want = expected(text)
        assert got.size == want.size  # exactly the samples: no header bytes left in
        tolerance = 0 if encoding == "LINEAR16" else 300  # μ-law is lossy
        assert np.max(np.abs(got.astype(int) - want.astype(int))) <= tolerance
    reqs = fake_google.tts.requests
    assert [(r[1], r[2], r[3]) for r in reqs] == [("he-IL-Wavenet-A", encoding, 8000)] * 2


async def test_next_sentence_is_made_while_the_first_plays(fake_google):
    fake_google.tts.delay_s = 0.3
    s = synth(fake_google)
    t0 = trio.current_time()
    stamps = []
    async for _ in s.synthesize("אחת. שתיים. שלוש."):
        stamps.append(trio.current_time() - t0)
        await trio.sleep(0.3)  # playing the sentence
    # sequential: 0.3, 0.9, 1.5 (gap 1.2); one sentence in flight ahead: 0.3, 0.6, 0.9 (gap 0.6)
    assert stamps[2] - stamps[0] < 0.9


async def test_warm_lines_start_instantly(fake_google):
    fake_google.tts.delay_s = 0.3
    s = synth(fake_google)
    await s.warm([CLARIFY_HE])
    n = len(fake_google.tts.requests)
    t0 = trio.current_time()
    chunks = [c async for c in s.synthesize(CLARIFY_HE)]
    # no new request, and no wait as long as one server round trip (a wall-clock bound a busy box keeps)
    assert len(fake_google.tts.requests) == n and trio.current_time() - t0 < fake_google.tts.delay_s
    assert len(chunks) == 1
    assert np.array_equal(np.frombuffer(chunks[0], dtype="<i2"), expected(CLARIFY_HE))


async def test_chirp3_hd_voice_streams(fake_google):
    s = synth(fake_google, voice="he-IL-Chirp3-HD-Aoede")
    chunks = [c async for c in s.synthesize("שלום, מה שלומך?")]
    assert len(chunks) >= 3  # audio arrived in pieces as it was made
    assert np.array_equal(np.frombuffer(b"".join(chunks), dtype="<i2"), expected("שלום, מה שלומך?"))
    assert fake_google.tts.requests[-1][2] == "PCM"


async def test_errors_are_provider_errors(fake_google):
    fake_google.tts.fail_next = 1
    s = synth(fake_google)
    with pytest.raises(ProviderError, match="UNAVAILABLE|unavailable|injected"):
        async for _ in s.synthesize("שלום."):
            pass


async def test_cancel_mid_reply_stops_asking_for_more(fake_google):
    fake_google.tts.delay_s = 0.1
    s = synth(fake_google)
    text = " ".join(f"משפט {i}." for i in range(10))
    async for _ in s.synthesize(text):
        break
    await trio.sleep(0.3)
    assert len(fake_google.tts.requests) <= 2  # the one played and the one in flight


def test_settings_from_env():
    st = GoogleTtsSettings.from_env({"GOOGLE_TTS_VOICE": "he-IL-Chirp3-HD-Aoede", "GOOGLE_TTS_RATE": "1.1",
                                     "GOOGLE_TTS_ENCODING": "mulaw"}, "iw-IL")
    assert st.language == "he-IL" and st.use_streaming and st.encoding == "MULAW" and st.speaking_rate == 1.1
    with pytest.raises(ConfigError):
        GoogleTtsSettings.from_env({"GOOGLE_TTS_ENCODING": "MP3"}, "he-IL")
    with pytest.raises(ConfigError):
        GoogleTtsSettings.from_env({"GOOGLE_TTS_RATE": "5"}, "he-IL")
