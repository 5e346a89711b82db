"""The real bundled tiny.en model transcribing espeak-ng English at 8 kHz (≈3 s on 2 cores)."""
import re

import pytest

from speech.espeak import render
from speech.whisper_local import WhisperRecognizer, load_model, resolve_model

FRAME = 320
pytestmark = pytest.mark.slow  # ~3 s with the model load; still part of `make test`


@pytest.fixture(scope="module")
def model():
    return load_model(resolve_model(None))


def feed(rec, pcm):
    pcm = pcm[: len(pcm) // FRAME * FRAME]
    for i in range(0, len(pcm), FRAME):
        rec.push(pcm[i : i + FRAME])
    return rec._ring.end_ms  # stream time after this audio


def words(text):
    return set(re.findall(r"[a-z]+", text.lower()))


async def test_tiny_en_hears_espeak_english_at_8k(model):
    rec = WhisperRecognizer(model, "en-US", preroll_ms=300)
    silence = b"\0" * 16000  # 1 s
    feed(rec, silence)
    speech = render("I am looking for an apartment in Tel Aviv. My name is David Cohen.", "en-US")
    end = feed(rec, speech + b"\0" * 3200)
    result = await rec.end_utterance(1000, end)
    heard = words(result.text)
    assert {"apartment", "tel", "aviv", "david"} <= heard, result.text
    assert result.is_final and result.provider == "whisper" and 0 < result.confidence <= 1
    assert result.start_ms == 700 and result.end_ms == end


async def test_only_the_utterance_window_is_transcribed(model):
    rec = WhisperRecognizer(model, "en-US", preroll_ms=200)
    first = render("The weather is lovely today.", "en-US")
    t1 = feed(rec, first + b"\0" * 16000)
    second = render("Call me tomorrow morning.", "en-US")
    t2 = feed(rec, second + b"\0" * 3200)
    result = await rec.end_utterance(t1, t2)
    heard = words(result.text)
    assert "tomorrow" in heard and "weather" not in heard, result.text


async def test_silence_gives_empty_text(model):
    rec = WhisperRecognizer(model, "en-US")
    end = feed(rec, b"\0" * 32000)
    result = await rec.end_utterance(500, end)
    assert result.text == "" and result.confidence == 0.0


async def test_noise_bursts_are_not_taken_for_a_turn(model):
    """A knock and a cough at speech level, through the real model: whatever words Whisper
    makes of them ("you", "Thank you."), the turn machine gives them no reply."""
    import numpy as np

    from native.config import TimingConfig
    from server import turn as T

    rng = np.random.default_rng(3)
    for ms, shape in ((150, "knock"), (300, "cough")):
        n = ms * 8
        env = np.exp(-np.arange(n) / (n / (6 if shape == "knock" else 2)))
        burst = (rng.normal(0, 6000, n) * env).clip(-32768, 32767).astype("<i2").tobytes()
        rec = WhisperRecognizer(model, "en-US", preroll_ms=300)
        feed(rec, b"\0" * 16000)
        end = feed(rec, burst + b"\0" * 6400)
        result = await rec.end_utterance(1000, end)
        m = T.TurnMachine(TimingConfig(), "en-US")
        m.handle(T.Calibrated())
        m.handle(T.VoiceOnset(1000))
        fin = [a for a in m.handle(T.EndOfUtterance(1000, end, voiced_ms=ms)) if isinstance(a, T.FinishUtterance)][0]
        acts = m.handle(T.AsrFinal(fin.seq, result.text, result.confidence))
        assert any(isinstance(a, T.Ignored) and a.kind == "noise" for a in acts), (shape, result)
