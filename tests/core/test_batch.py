"""The Numba batch kernels agree with the per-frame Cython path they stand in for offline."""
from __future__ import annotations


import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from native import batch, codec


def test_frame_rms_matches_the_per_frame_inbound_energy() -> None:
    ulaw = np.random.default_rng(0).integers(0, 256, 160 * 250 + 37, dtype=np.uint8).tobytes()  # + a partial frame, ignored
    pcm = np.frombuffer(codec.ulaw_to_pcm16(ulaw), dtype=np.int16)
    got = batch.frame_rms(pcm)
    dst = bytearray(320)
    expected = [codec.decode_with_energy(ulaw[160 * i : 160 * i + 160], dst) for i in range(250)]
    assert got.shape == (250,)
    assert np.array_equal(got, np.array(expected))
    assert np.array_equal(batch.frame_rms_numpy(pcm), got)
    out = np.empty(250)
    assert codec.pcm16_frame_rms_into(pcm, out) == 250 and np.array_equal(out, got)


@settings(max_examples=50, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(st.binary(max_size=3000))
def test_ulaw_decode_matches_the_codec(data: bytes) -> None:
    table = batch.ulaw_table()
    assert batch.ulaw_decode(data, table).tobytes() == codec.ulaw_to_pcm16(data)


def test_extreme_samples_do_not_overflow() -> None:
    pcm = np.full(160 * 3, -32768, dtype=np.int16)
    assert np.all(batch.frame_rms(pcm) == 32768.0)
    out = np.empty(3)
    codec.pcm16_frame_rms_into(pcm, out, 160)
    assert np.all(out == 32768.0)
