import time

import numpy as np
import trio

from speech.espeak import render
from speech.espeak_tts import EspeakSynthesizer


async def collect(synth, text):
    return b"".join([c async for c in synth.synthesize(text)])


async def test_streamed_audio_equals_blocking_render_for_one_sentence():
    synth = EspeakSynthesizer("en-US")
    got = await collect(synth, "Hello there, how are you")
    want = render("Hello there, how are you", "en-US")
    assert abs(len(got) - len(want)) <= 4
    a = np.frombuffer(got, dtype="<i2")[: len(want) // 2].astype(float)
    b = np.frombuffer(want, dtype="<i2")[: a.size].astype(float)
    assert np.corrcoef(a, b)[0, 1] > 0.99


async def test_hebrew_sentences_are_voiced_in_order_and_chunked():
    synth = EspeakSynthesizer("he-IL")
    chunks = [c async for c in synth.synthesize("שלום. מה שלומך היום?")]
    assert len(chunks) > 2 and all(len(c) % 2 == 0 for c in chunks)
    total = sum(len(c) for c in chunks) / 2 / 8000
    assert 0.8 < total < 6


async def test_warm_lines_come_from_cache_in_one_chunk():
    synth = EspeakSynthesizer("he-IL")
    line = "לא בטוח ששמעתי נכון, אפשר לחזור על זה?"
    await synth.warm([line])
    chunks = [c async for c in synth.synthesize(line)]
    assert len(chunks) == 1 and len(chunks[0]) > 8000


async def test_cancel_mid_sentence_kills_espeak():
    synth = EspeakSynthesizer("en-US")
    got = 0
    with trio.CancelScope() as scope:
        async for chunk in synth.synthesize("This is a long sentence " * 20):
            got += len(chunk)
            scope.cancel()
    assert got > 0
    # no espeak-ng child is left behind
    import os
    import subprocess

    out = subprocess.run(["pgrep", "-P", str(os.getpid()), "espeak-ng"], capture_output=True, text=True)
    assert out.stdout.strip() == ""
