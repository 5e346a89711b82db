import io
import wave

import numpy as np

from speech.audio import FrameRing, strip_wav_header, to_whisper_input, wav_bytes
from speech.sentences import split_sentences


def frame(value: int) -> bytes:
    return np.full(160, value, dtype="<i2").tobytes()


def test_ring_addresses_stream_time_and_forgets_old_audio():
    ring = FrameRing(100)  # 5 frames
    for i in range(8):
        ring.push(frame(i))
    assert ring.end_ms == 160 and ring.start_ms == 60
    got = np.frombuffer(ring.slice(0, 1000), dtype="<i2")
    assert list(got[::160]) == [3, 4, 5, 6, 7]
    assert np.frombuffer(ring.slice(100, 140), dtype="<i2")[0] == 5
    assert ring.slice(200, 300) == b""


def test_ring_pads_a_short_frame_to_keep_the_clock():
    ring = FrameRing(1000)
    ring.push(b"\x01\x00" * 10)
    ring.push(frame(2))
    assert ring.end_ms == 40
    assert len(ring.slice(0, 40)) == 640


def test_whisper_input_is_16k_float():
    pcm = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 10000).astype("<i2").tobytes()
    audio = to_whisper_input(pcm)
    assert audio.dtype == np.float32 and abs(audio.size - 16000) <= 2
    assert 0.25 < float(np.max(np.abs(audio))) < 0.35


def test_strip_wav_header_walks_chunks():
    payload = bytes(range(200))
    wav = wav_bytes(payload)
    assert strip_wav_header(wav) == payload
    assert strip_wav_header(payload) == payload
    # a fmt chunk longer than 16 bytes plus a LIST chunk (as μ-law WAVs have)
    fmt = (7).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little") \
        + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little") + b"\0\0"
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"LIST" + (3).to_bytes(4, "little") \
        + b"abc\0" + b"data" + (5).to_bytes(4, "little") + b"\x01\x02\x03\x04\x05"
    blob = b"RIFF" + len(body).to_bytes(4, "little") + body
    assert strip_wav_header(blob) == b"\x01\x02\x03\x04\x05"



def test_split_sentences_keeps_decimals_and_hebrew():
    assert split_sentences("מצוין. דירה של 3.5 חדרים? נכון!") == ["מצוין.", "דירה של 3.5 חדרים?", "נכון!"]
    assert split_sentences("  ") == []
