"""Framer: arbitrary chunks in, exact 160-byte μ-law frames out, bounded, no surprises."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from native import codec
from native.framer import Framer

FRAME = 160


def drain(f: Framer) -> bytes:
    out = bytearray(FRAME)
    got = bytearray()
    while f.read_frame(out):
        got += out
    return bytes(got)


def test_exact_frames_and_partial() -> None:
    f = Framer(10)
    pcm = bytes(range(256)) * 3  # 768 bytes = 384 samples = 2 frames + 64
    f.write_pcm16(pcm)
    assert (f.frames, f.partial_bytes) == (2, 64)
    assert drain(f) == codec.pcm16_to_ulaw(pcm)[:320]
    out = bytearray(FRAME)
    assert not f.read_frame(out)
    f.flush()
    assert f.read_frame(out)
    assert bytes(out) == codec.pcm16_to_ulaw(pcm)[320:] + b"\xff" * 96
    assert f.frames == 0 and f.free_bytes == 10 * FRAME


def test_odd_byte_is_carried_to_the_next_write() -> None:
    f = Framer(4)
    pcm = bytes(range(1, 200))  # odd: 199 bytes
    f.write_pcm16(pcm[:1])
    f.write_pcm16(pcm[1:100])
    f.write_pcm16(pcm[100:])
    f.write_pcm16(b"\x7f")  # completes the 100th sample with the dangling byte
    assert f.partial_bytes == 100
    f.flush()
    assert drain(f) == codec.pcm16_to_ulaw(pcm + b"\x7f") + b"\xff" * 60


def test_flush_drops_a_dangling_half_sample() -> None:
    f = Framer(2)
    f.write_pcm16(b"\x01\x02\x03")
    f.flush()
    assert drain(f) == codec.pcm16_to_ulaw(b"\x01\x02") + b"\xff" * 159
    f.write_pcm16(b"\x00\x00")  # the dropped byte must not pair with this write
    assert f.partial_bytes == 1


def test_overflow_is_an_error_and_changes_nothing() -> None:
    f = Framer(2)
    f.write_ulaw(b"\x01" * 300)
    with pytest.raises(BufferError):
        f.write_ulaw(b"\x02" * 21)
    with pytest.raises(BufferError):
        f.write_pcm16(b"\x00" * 42)
    assert f.free_bytes == 20 and f.frames == 1 and f.partial_bytes == 140
    f.write_pcm16(b"\x00" * 40)
    assert f.free_bytes == 0 and f.frames == 2


def test_clear_drops_everything() -> None:
    f = Framer(3)
    f.write_pcm16(b"\x10" * 501)
    f.clear()
    assert (f.frames, f.partial_bytes, f.free_bytes) == (0, 0, 480)
    f.write_pcm16(b"\x00")  # the odd byte before clear() is gone too
    assert f.partial_bytes == 0


def test_small_out_buffer_and_capacity() -> None:
    with pytest.raises(ValueError):
        Framer(0)
    f = Framer(1)
    f.write_ulaw(b"\x00" * 160)
    with pytest.raises(ValueError):
        f.read_frame(bytearray(159))
    assert f.frames == 1


@settings(max_examples=200, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(st.lists(st.tuples(st.sampled_from(["pcm", "ulaw", "read", "flush"]), st.binary(max_size=700)), max_size=40))
def test_matches_a_plain_bytes_model(ops: list[tuple[str, bytes]]) -> None:
    """Against a model: a bytes queue + carry byte. Wrap-around is exercised by the small ring."""
    f = Framer(5)
    queue = bytearray()
    carry = b""
    out = bytearray(FRAME)
    for op, data in ops:
        if op == "read":
            ok = f.read_frame(out)
            assert ok == (len(queue) >= FRAME)
            if ok:
                assert bytes(out) == bytes(queue[:FRAME])
                del queue[:FRAME]
        elif op == "flush":
            f.flush()
            carry = b""
            if len(queue) % FRAME:
                queue += b"\xff" * (FRAME - len(queue) % FRAME)
        else:
            if op == "pcm":
                joined = carry + data
                enc = codec.pcm16_to_ulaw(joined[: len(joined) // 2 * 2])
            else:
                joined, enc = b"", data
            if len(queue) + len(enc) > 5 * FRAME:
                with pytest.raises(BufferError):
                    (f.write_pcm16 if op == "pcm" else f.write_ulaw)(data)
                continue
            (f.write_pcm16 if op == "pcm" else f.write_ulaw)(data)
            queue += enc
            if op == "pcm":
                carry = joined[-1:] if len(joined) % 2 else b""
        assert f.frames == len(queue) // FRAME
        assert f.partial_bytes == len(queue) % FRAME  # never more than one partial frame
        assert f.free_bytes == 5 * FRAME - len(queue)
