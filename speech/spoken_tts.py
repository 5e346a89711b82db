"""The synthesizer the call session gets: any synthesizer, fed the spoken form of each line.

:func:`speech.spoken.spoken` turns "דירת 4 חדרים, עד 1,800,000 ₪" into the words a voice should
say; this wrapper applies it before every synthesis and warm-up, so Google TTS, espeak-ng and
the failover between them all hear the same words, and a fixed line warmed at startup is
cached under the very text it is later asked for. The session, the transcript and the
dashboard only ever see the written form.
"""
from __future__ import annotations

from typing import AsyncIterator

from speech.base import Synthesizer
from speech.spoken import spoken


class SpokenSynthesizer(Synthesizer):
    def __init__(self, inner: Synthesizer, language: str) -> None:
        self.inner = inner
        self.language = language
        self.name = inner.name

    def spoken(self, text: str) -> str:
        return spoken(text, self.language)

    async def warm(self, lines: list[str]) -> None:
        await self.inner.warm(list(dict.fromkeys(self.spoken(line) for line in lines)))

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        agen = self.inner.synthesize(self.spoken(text))
        try:
            async for chunk in agen:
                yield chunk
        finally:
            await agen.aclose()  # type: ignore[attr-defined]
