"""OpenAI's transcription API (Whisper) as a batch :class:`Recognizer`.

Same shape as the local one: keep recent audio, at EOU upload the utterance as a 16 kHz WAV.
The official client is synchronous here and runs in a worker thread: it works under Trio
without an asyncio bridge. OPENAI_BASE_URL points it at a local fake in tests.
"""
from __future__ import annotations

import numpy as np
import trio

from speech.audio import WHISPER_RATE, FrameRing, to_whisper_input, wav_bytes
from speech.base import ProviderError, Recognizer, Transcript
from speech.whisper_local import DEFAULT_PREROLL_MS, RING_MS, whisper_language

DEFAULT_MODEL = "whisper-1"


def make_client(api_key: str, base_url: str | None = None, timeout_s: float = 10.0):  # -> openai.OpenAI
    import openai

    # No client-side retries: the failover wrapper decides what a slow answer means.
    return openai.OpenAI(api_key=api_key, base_url=base_url or None, timeout=timeout_s, max_retries=0)


class OpenAIWhisperRecognizer(Recognizer):
    name = "openai-whisper"

    def __init__(
        self,
        client,
        language: str = "he-IL",
        model: str = DEFAULT_MODEL,
        preroll_ms: int = DEFAULT_PREROLL_MS,
        prompt: str | None = None,
    ) -> None:
        self._client = client
        self._language = whisper_language(language)
        self._model = model
        self._preroll_ms = preroll_ms
        self._prompt = prompt
        self._ring = FrameRing(RING_MS)

    def push(self, pcm16: bytes) -> None:
        self._ring.push(pcm16)

    def _transcribe(self, pcm16_8k: bytes) -> str:
        audio16k = to_whisper_input(pcm16_8k)
        pcm16k = (np.clip(audio16k, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        kwargs = {"prompt": self._prompt} if self._prompt else {}
        result = self._client.audio.transcriptions.create(
            model=self._model,
            file=("utterance.wav", wav_bytes(pcm16k, WHISPER_RATE), "audio/wav"),
            language=self._language,
            response_format="json",
            **kwargs,
        )
        return (getattr(result, "text", None) or "").strip()

    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        start = max(0, onset_ms - self._preroll_ms)
        pcm = self._ring.slice(start, eou_ms)
        try:
            text = await trio.to_thread.run_sync(self._transcribe, pcm, abandon_on_cancel=True)
        except Exception as exc:
            raise ProviderError(self.name, f"transcription request failed: {exc}") from exc
        # The json response carries no confidence; a non-empty answer counts as confident.
        return Transcript(text, 1.0 if text else 0.0, True, self.name, start, eou_ms)
