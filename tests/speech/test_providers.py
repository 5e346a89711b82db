import pytest

from native.config import ConfigError
from speech.espeak_tts import EspeakSynthesizer
from speech.providers import select_speech
from speech.spoken_tts import SpokenSynthesizer
from speech.whisper_local import WhisperRecognizer


def test_offline_english_pair():
    sp = select_speech({"AGENT_LANGUAGE": "en-US"})
    assert (sp.asr_name, sp.tts_name) == ("whisper", "espeak")
    assert sp.asr_fallback is None
    assert isinstance(sp.synthesizer, SpokenSynthesizer) and isinstance(sp.synthesizer.inner, EspeakSynthesizer)
    assert sp.synthesizer.name == "espeak" and sp.synthesizer.language == "en-US"
    assert isinstance(sp.new_recognizer("en-US"), WhisperRecognizer)
    info = sp.describe()
    assert info["asr"] == "whisper" and any("offline" in why for why in info["why"])


def test_hebrew_without_a_hebrew_recognizer_is_a_clear_error():
    with pytest.raises(ConfigError) as err:
        select_speech({})  # AGENT_LANGUAGE defaults to he-IL, bundled model is tiny.en
    msg = str(err.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in msg and "OPENAI_API_KEY" in msg and "WHISPER_MODEL" in msg


def test_hebrew_with_explicit_whisper_and_english_model_is_refused():
    with pytest.raises(ConfigError, match="English-only"):
        select_speech({"AGENT_LANGUAGE": "iw-IL", "ASR_PROVIDER": "whisper"})


def test_missing_model_names_whisper_model(tmp_path):
    with pytest.raises(ConfigError, match="WHISPER_MODEL"):
        select_speech({"AGENT_LANGUAGE": "en-US", "WHISPER_MODEL": str(tmp_path)})
    with pytest.raises(ConfigError, match="WHISPER_MODEL"):
        select_speech({"AGENT_LANGUAGE": "en-US", "WHISPER_MODEL": "no-such-size-xyz"})


def test_multilingual_model_dir_makes_hebrew_offline_possible(tmp_path):
    from speech.whisper_local import resolve_model

    (tmp_path / "model.bin").write_bytes(b"")
    (tmp_path / "vocabulary.txt").write_text("x\n" * 51865)
    assert resolve_model(str(tmp_path)).multilingual is True
    (tmp_path / "vocabulary.txt").write_text("x\n" * 51864)
    assert resolve_model(str(tmp_path)).multilingual is False


def test_openai_key_makes_hebrew_work_and_auto_picks_it():
    sp = select_speech({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert sp.asr_name == "openai-whisper" and sp.asr_fallback is None
    assert sp.new_recognizer("he-IL").name == "openai-whisper"


@pytest.mark.parametrize(
    "env, match",
    [
        ({"ASR_PROVIDER": "espeak"}, "ASR_PROVIDER"),
        ({"TTS_PROVIDER": "whisper", "AGENT_LANGUAGE": "en-US"}, "TTS_PROVIDER"),
        ({"ASR_PROVIDER": "google"}, "GOOGLE"),
        ({"ASR_PROVIDER": "openai-whisper"}, "OPENAI_API_KEY"),
        ({"TTS_PROVIDER": "google", "AGENT_LANGUAGE": "en-US"}, "GOOGLE"),
    ],
)
def test_impossible_setups(env, match):
    with pytest.raises(ConfigError, match=match):
        select_speech(env)


def test_google_everything_with_fallbacks(fake_google):
    from speech.failover import FailoverRecognizer, FailoverSynthesizer

    env = {"GOOGLE_SPEECH_ENDPOINT": fake_google.endpoint, "GOOGLE_TTS_ENDPOINT": fake_google.endpoint,
           "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    sp = select_speech(env)
    assert (sp.asr_name, sp.asr_fallback, sp.tts_name, sp.tts_fallback) == ("google", "openai-whisper", "google", "espeak")
    rec = sp.new_recognizer("he-IL")
    assert isinstance(rec, FailoverRecognizer) and rec.primary.language == "iw-IL"
    # every engine (Google, and espeak-ng behind it) is fed the spoken form
    assert isinstance(sp.synthesizer, SpokenSynthesizer) and isinstance(sp.synthesizer.inner, FailoverSynthesizer)


def test_google_hebrew_without_a_hebrew_fallback_says_so(fake_google):
    sp = select_speech({"GOOGLE_SPEECH_ENDPOINT": fake_google.endpoint, "TTS_PROVIDER": "espeak"})
    assert sp.asr_name == "google" and sp.asr_fallback is None
    assert any("fallback: none" in why for why in sp.reasons)


def test_google_english_falls_back_to_local_whisper(fake_google):
    sp = select_speech({"GOOGLE_SPEECH_ENDPOINT": fake_google.endpoint, "AGENT_LANGUAGE": "en-US"})
    assert sp.asr_fallback == "whisper" and sp.new_recognizer("en-US").fallback.name == "whisper"


def test_preroll_follows_the_timing_config():
    rec = select_speech({"AGENT_LANGUAGE": "en-US", "AL_PREROLL_MS": "450"}).new_recognizer("en-US")
    assert rec._preroll_ms == 450
    with pytest.raises(ConfigError, match="preroll_ms"):
        select_speech({"AGENT_LANGUAGE": "en-US", "AL_PREROLL_MS": "5000"})
