"""μ-law codec: bit-exact with audioop (the oracle, test-only) and the buffer variants."""
from __future__ import annotations

import array
import math
import struct
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from native import codec

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop", reason="audioop (the oracle) is gone in Python >= 3.13")

ALL_ULAW = bytes(range(256))


@pytest.fixture(autouse=True, params=["simd", "scalar"])
def decode_path(request: pytest.FixtureRequest):
    """Every test runs on the AVX2 decode path (where the CPU has it) and on the scalar table."""
    if request.param == "simd" and not codec.SIMD_AVAILABLE:
        pytest.skip("no AVX2 on this CPU")
    codec.use_simd(request.param == "simd")
    yield request.param
    codec.use_simd(True)


ALL_PCM = struct.pack(f"<{65536}h", *range(-32768, 32768))


def test_decode_every_ulaw_byte() -> None:
    assert codec.ulaw_to_pcm16(ALL_ULAW) == audioop.ulaw2lin(ALL_ULAW, 2)


def test_encode_every_int16_value() -> None:
    assert codec.pcm16_to_ulaw(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)


def test_roundtrip_of_every_ulaw_byte_is_stable() -> None:
    # 0x7F and 0xFF both decode to 0 and re-encode to 0xFF (audioop does the same)
    again = codec.pcm16_to_ulaw(codec.ulaw_to_pcm16(ALL_ULAW))
    assert again == audioop.lin2ulaw(audioop.ulaw2lin(ALL_ULAW, 2), 2)


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(st.binary(max_size=2000))
def test_decode_random_buffers(data: bytes) -> None:
    assert codec.ulaw_to_pcm16(data) == audioop.ulaw2lin(data, 2)
    assert codec.ulaw_to_pcm16(bytearray(data)) == audioop.ulaw2lin(data, 2)
    assert codec.ulaw_to_pcm16(memoryview(data)) == audioop.ulaw2lin(data, 2)


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(st.binary(max_size=2000))
def test_encode_random_buffers(data: bytes) -> None:
    if len(data) % 2:
        with pytest.raises(ValueError):
            codec.pcm16_to_ulaw(data)
        with pytest.raises(audioop.error):
            audioop.lin2ulaw(data, 2)
        data = data[:-1]
    assert codec.pcm16_to_ulaw(data) == audioop.lin2ulaw(data, 2)
    assert codec.pcm16_to_ulaw(memoryview(bytearray(data))) == audioop.lin2ulaw(data, 2)


@settings(max_examples=200, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(st.binary(min_size=1, max_size=400), st.integers(0, 3))
def test_into_variants_write_in_place(data: bytes, slack: int) -> None:
    dst = bytearray(2 * len(data) + slack)
    sentinel = bytes(dst[2 * len(data):])
    assert codec.ulaw_to_pcm16_into(data, dst) == 2 * len(data)
    assert bytes(dst[: 2 * len(data)]) == audioop.ulaw2lin(data, 2)
    assert bytes(dst[2 * len(data):]) == sentinel
    pcm = data[: len(data) // 2 * 2]
    out = bytearray(len(pcm) // 2 + slack)
    assert codec.pcm16_to_ulaw_into(pcm, out) == len(pcm) // 2
    assert bytes(out[: len(pcm) // 2]) == audioop.lin2ulaw(pcm, 2)


@settings(max_examples=200, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(st.binary(max_size=400))
def test_decode_with_energy_is_decode_plus_rms(data: bytes) -> None:
    dst = bytearray(2 * len(data))
    rms = codec.decode_with_energy(data, dst)
    assert bytes(dst) == audioop.ulaw2lin(data, 2)
    samples = np.frombuffer(bytes(dst), dtype=np.int16).astype(np.float64)
    expected = math.sqrt(float(np.mean(samples**2))) if len(data) else 0.0
    assert rms == pytest.approx(expected, rel=1e-12, abs=0.0)
    assert abs(rms - audioop.rms(bytes(dst), 2)) < 1  # audioop.rms truncates to an int
    assert codec.pcm16_rms(dst) == rms
    assert codec.ulaw_rms(data) == rms


@pytest.mark.parametrize("n", [0, 1, 160, 4096, 4097, 20000])
def test_into_returns_the_byte_count_for_any_size(n: int) -> None:
    src = bytes(range(256)) * (n // 256 + 1)
    dst = bytearray(2 * n)
    assert codec.ulaw_to_pcm16_into(src[:n], dst) == 2 * n
    assert bytes(dst) == audioop.ulaw2lin(src[:n], 2)
    out = bytearray(n)
    assert codec.pcm16_to_ulaw_into(bytes(dst), out) == n


def test_into_writes_into_a_memoryview_slice() -> None:
    big = bytearray(1000)
    view = memoryview(big)[100:420]
    assert codec.ulaw_to_pcm16_into(ALL_ULAW[:160], view) == 320
    assert bytes(big[100:420]) == audioop.ulaw2lin(ALL_ULAW[:160], 2)
    assert big[:100] == bytearray(100) and big[420:] == bytearray(580)


def test_errors() -> None:
    with pytest.raises(ValueError, match="needs 320"):
        codec.ulaw_to_pcm16_into(bytes(160), bytearray(319))
    with pytest.raises(ValueError):
        codec.pcm16_to_ulaw_into(bytes(320), bytearray(159))
    with pytest.raises(ValueError):
        codec.pcm16_to_ulaw_into(bytes(3), bytearray(10))
    with pytest.raises(ValueError):
        codec.pcm16_rms(bytes(3))
    with pytest.raises(BufferError):
        codec.ulaw_to_pcm16_into(bytes(1), bytes(2))  # read-only destination
    with pytest.raises(TypeError):
        codec.ulaw_to_pcm16("text")  # type: ignore[arg-type]
    assert codec.ulaw_to_pcm16(b"") == b"" and codec.pcm16_to_ulaw(b"") == b""
    assert codec.pcm16_rms(b"") == 0.0 and codec.decode_with_energy(b"", bytearray()) == 0.0


def test_array_and_numpy_inputs() -> None:
    samples = array.array("h", range(-1000, 1000, 7))
    assert codec.pcm16_to_ulaw(samples) == audioop.lin2ulaw(samples.tobytes(), 2)
    npbuf = np.arange(-32768, 32768, 97, dtype=np.int16)
    assert codec.pcm16_to_ulaw(npbuf) == audioop.lin2ulaw(npbuf.tobytes(), 2)


def test_host_is_little_endian() -> None:
    # PCM16 is native-endian like audioop's; Twilio / Google LINEAR16 want little-endian.
    assert sys.byteorder == "little"


@pytest.mark.parametrize("offset", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 160, 1001])
def test_misaligned_buffers(offset: int, n: int) -> None:
    """Slices at odd addresses: int16 data the kernels must not assume aligned."""
    raw = bytearray(np.random.default_rng(n + offset).integers(0, 256, 2 * n + 8, dtype=np.uint8).tobytes())
    pcm = memoryview(raw)[offset : offset + 2 * n]
    assert codec.pcm16_to_ulaw(pcm) == audioop.lin2ulaw(bytes(pcm), 2)
    assert abs(codec.pcm16_rms(pcm) - audioop.rms(bytes(pcm), 2)) < 1
    ulaw = bytes(pcm[:n])
    dst = memoryview(bytearray(2 * n + 8))[offset : offset + 2 * n]
    codec.ulaw_to_pcm16_into(memoryview(bytearray(b"x" + ulaw))[1:], dst)
    assert bytes(dst) == audioop.ulaw2lin(ulaw, 2)
    rms = codec.decode_with_energy(ulaw, dst)
    assert bytes(dst) == audioop.ulaw2lin(ulaw, 2) and abs(rms - audioop.rms(bytes(dst), 2)) < 1
    out = memoryview(bytearray(n + 8))[offset : offset + n]
    assert codec.pcm16_to_ulaw_into(pcm, out) == n and bytes(out) == audioop.lin2ulaw(bytes(pcm), 2)
