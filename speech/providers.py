"""Which ASR / TTS this process uses, decided once at startup from the environment.

ASR_PROVIDER / TTS_PROVIDER = auto | google | whisper | openai-whisper | espeak.
``auto`` takes the real service when its credentials are present, else the offline engine.
A Hebrew agent with no Hebrew-capable recognizer is a startup error, never a silent
English fallback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from native.config import ConfigError
from speech.base import Recognizer, Synthesizer

ASR_CHOICES = ("auto", "google", "whisper", "openai-whisper")
TTS_CHOICES = ("auto", "google", "espeak")


@dataclass(frozen=True)
class SpeechProviders:
    new_recognizer: Callable[[str], Recognizer]  # arg: language (AGENT_LANGUAGE)
    synthesizer: Synthesizer
    asr_name: str
    tts_name: str
    asr_fallback: str | None  # recognizer that takes an utterance when the primary fails
    tts_fallback: str | None
    language: str
    reasons: tuple[str, ...] = field(default=())  # why each choice was made, for the startup line

    def describe(self) -> dict[str, Any]:
        """The providers block of /version and the STARTUP log line."""
        return {
            "asr": self.asr_name, "asr_fallback": self.asr_fallback,
            "tts": self.tts_name, "tts_fallback": self.tts_fallback,
            "language": self.language, "why": list(self.reasons),
        }


def is_hebrew(language: str) -> bool:
    return language.split("-")[0].lower() in ("he", "iw")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or "auto").strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _hebrew_error(detail: str) -> ConfigError:
    return ConfigError(
        f"AGENT_LANGUAGE is Hebrew but {detail}. Ways to get a Hebrew recognizer: "
        "set GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SPEECH_ENDPOINT) for Google Speech-to-Text, "
        "set OPENAI_API_KEY for OpenAI transcription, or set WHISPER_MODEL to a multilingual "
        "(not .en) CTranslate2 Whisper model directory. Or set AGENT_LANGUAGE=en-US for the "
        "English offline demo."
    )


def select_speech(env: Mapping[str, str]) -> SpeechProviders:
    language = env.get("AGENT_LANGUAGE") or "he-IL"
    hebrew = is_hebrew(language)
    asr = _choice(env, "ASR_PROVIDER", ASR_CHOICES)
    tts = _choice(env, "TTS_PROVIDER", TTS_CHOICES)
    google_stt = bool(env.get("GOOGLE_APPLICATION_CREDENTIALS") or env.get("GOOGLE_SPEECH_ENDPOINT"))
    google_tts = bool(env.get("GOOGLE_APPLICATION_CREDENTIALS") or env.get("GOOGLE_TTS_ENDPOINT"))
    openai_key = env.get("OPENAI_API_KEY")
    reasons: list[str] = []

    if asr == "auto":
        if google_stt:
            asr = "google"
            reasons.append("asr=google: Google credentials/endpoint present")
        elif openai_key:
            asr = "openai-whisper"
            reasons.append("asr=openai-whisper: OPENAI_API_KEY present, no Google credentials")
        else:
            asr = "whisper"
            reasons.append("asr=whisper: no Google credentials and no OPENAI_API_KEY (offline)")
    if asr == "google" and not google_stt:
        raise ConfigError("ASR_PROVIDER=google needs GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SPEECH_ENDPOINT")
    if asr == "openai-whisper" and not openai_key:
        raise ConfigError("ASR_PROVIDER=openai-whisper needs OPENAI_API_KEY")

    # The local model is resolved (and its language checked) only if something uses it.
    local_spec = None
    local_error: ConfigError | None = None
    try:
        from speech.whisper_local import resolve_model

        local_spec = resolve_model(env.get("WHISPER_MODEL"))
    except ConfigError as exc:
        local_error = exc
    local_fits = local_spec is not None and (local_spec.multilingual or not hebrew)

    if asr == "whisper":
        if local_error is not None:
            raise local_error
        if not local_fits:
            raise _hebrew_error(f"the local Whisper model ({local_spec.label}) is English-only")

    fallback: str | None = None
    if asr == "google":
        fallback = "openai-whisper" if openai_key else ("whisper" if local_fits else None)
    elif asr == "openai-whisper":
        fallback = "whisper" if local_fits else None
    if fallback is None and asr != "whisper":
        reasons.append(f"asr fallback: none fits {language} (set OPENAI_API_KEY or a multilingual WHISPER_MODEL)")

    new_recognizer = _recognizer_factory(env, asr, fallback, local_spec)

    if tts == "auto":
        tts = "google" if google_tts else "espeak"
        reasons.append(f"tts={tts}: " + ("Google credentials/endpoint present" if google_tts else "offline"))
    if tts == "google" and not google_tts:
        raise ConfigError("TTS_PROVIDER=google needs GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_TTS_ENDPOINT")
    synthesizer, tts_fallback = _synthesizer(env, tts, language)

    return SpeechProviders(
        new_recognizer=new_recognizer, synthesizer=synthesizer, asr_name=asr, tts_name=tts,
        asr_fallback=fallback, tts_fallback=tts_fallback, language=language, reasons=tuple(reasons),
    )


def _recognizer_factory(env: Mapping[str, str], asr: str, fallback: str | None, local_spec: Any
                        ) -> Callable[[str], Recognizer]:
    makers: dict[str, Callable[[str], Recognizer]] = {}
    needed = {asr} | ({fallback} if fallback else set())
    from native.config import TimingConfig

    preroll = TimingConfig.from_env(env).preroll_ms  # the same pre-roll the session's VAD assumes
    if "whisper" in needed:
        from speech.whisper_local import WhisperRecognizer, load_model

        model = load_model(local_spec)  # once per process, at startup: the first call is not slow
        makers["whisper"] = lambda lang: WhisperRecognizer(model, lang, preroll_ms=preroll)
    if "openai-whisper" in needed:
        from speech.openai_whisper import DEFAULT_MODEL, OpenAIWhisperRecognizer, make_client

        client = make_client(env["OPENAI_API_KEY"], env.get("OPENAI_BASE_URL"))
        model_name = env.get("OPENAI_TRANSCRIBE_MODEL") or DEFAULT_MODEL
        makers["openai-whisper"] = lambda lang: OpenAIWhisperRecognizer(
            client, lang, model=model_name, preroll_ms=preroll)
    if "google" in needed:
        from speech.google_stt import GoogleSttSettings, GoogleStreamingRecognizer, make_speech_client

        settings = GoogleSttSettings.from_env(env)
        client = make_speech_client(env, settings)
        makers["google"] = lambda lang: GoogleStreamingRecognizer(client, settings, lang, preroll_ms=preroll)

    if fallback is None:
        return makers[asr]
    from speech.failover import FailoverRecognizer

    stall_s = float(env.get("ASR_STALL_MS") or 1200) / 1000.0
    return lambda lang: FailoverRecognizer(makers[asr](lang), makers[fallback](lang), stall_s=stall_s)


def _synthesizer(env: Mapping[str, str], tts: str, language: str) -> tuple[Synthesizer, str | None]:
    """The synthesizer for the calls, wrapped so that every engine is fed the spoken form of
    each line (speech/spoken.py: numbers in words with the right gender, times, prices,
    phone digits, the brand in Hebrew letters); the session keeps the written form."""
    from speech.espeak_tts import EspeakSynthesizer
    from speech.spoken_tts import SpokenSynthesizer

    espeak = EspeakSynthesizer(language)
    if tts == "espeak":
        return SpokenSynthesizer(espeak, language), None
    from speech.failover import FailoverSynthesizer
    from speech.google_tts import GoogleSynthesizer, GoogleTtsSettings, make_tts_client

    settings = GoogleTtsSettings.from_env(env, language)
    google = GoogleSynthesizer(make_tts_client(env), settings)
    return SpokenSynthesizer(FailoverSynthesizer(google, espeak), language), "espeak"
