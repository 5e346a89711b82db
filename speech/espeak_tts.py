"""espeak-ng as an async :class:`Synthesizer`: streams espeak's stdout through a Trio process.

espeak-ng writes a 22.05 kHz WAV to stdout as it synthesizes; we parse the header, resample
each chunk to 8 kHz with a streaming soxr resampler and yield it at once, so the first audio
leaves before espeak has finished the sentence (time-to-first-audio is in bench/).
"""
from __future__ import annotations

from typing import AsyncIterator

import numpy as np
import soxr
import trio

from native.config import SAMPLE_RATE
from speech.base import ProviderError, Synthesizer
from speech.espeak import ESPEAK_RATE, espeak_binary, voice_for
from speech.sentences import split_sentences

_WAV_HEADER = 44  # espeak-ng's streamed WAV header is the canonical 44-byte one
_READ = 4096


class EspeakSynthesizer(Synthesizer):
    name = "espeak"

    def __init__(self, language: str = "he-IL", words_per_minute: int = 165, pitch: int = 50) -> None:
        self.language = language
        self.words_per_minute = words_per_minute
        self.pitch = pitch
        self._binary = espeak_binary()
        self._cache: dict[str, bytes] = {}

    async def warm(self, lines: list[str]) -> None:
        for line in lines:
            self._cache[line] = b"".join([chunk async for chunk in self._speak_all(line)])

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        cached = self._cache.get(text)
        if cached is not None:
            yield cached
            return
        async for chunk in self._speak_all(text):
            yield chunk

    async def _speak_all(self, text: str) -> AsyncIterator[bytes]:
        for sentence in split_sentences(text):
            async for chunk in self._speak(sentence):
                yield chunk

    async def _speak(self, sentence: str) -> AsyncIterator[bytes]:
        argv = [
            self._binary, "-v", voice_for(self.language), "-s", str(self.words_per_minute),
            "-p", str(self.pitch), "--stdout", sentence,
        ]
        resampler = soxr.ResampleStream(ESPEAK_RATE, SAMPLE_RATE, 1, dtype="int16", quality="HQ")
        try:
            proc = await trio.lowlevel.open_process(argv, stdout=-1, stderr=-3)  # PIPE, DEVNULL
        except OSError as exc:
            raise ProviderError("espeak", f"cannot start espeak-ng: {exc}") from exc
        try:
            header = b""
            carry = b""
            assert proc.stdout is not None
            while True:
                data = await proc.stdout.receive_some(_READ)
                if not data:
                    break
                if len(header) < _WAV_HEADER:
                    need = _WAV_HEADER - len(header)
                    header += data[:need]
                    data = data[need:]
                data = carry + data
                cut = len(data) // 2 * 2
                carry = data[cut:]
                if cut:
                    out = resampler.resample_chunk(np.frombuffer(data[:cut], dtype="<i2"))
                    if out.size:
                        yield out.astype("<i2", copy=False).tobytes()
            tail = resampler.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
            if tail.size:
                yield tail.astype("<i2", copy=False).tobytes()
            code = await proc.wait()
            if code != 0:
                raise ProviderError("espeak", f"espeak-ng exited with {code}")
        finally:
            # Barge-in cancels us mid-sentence: the process must not outlive the scope.
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
