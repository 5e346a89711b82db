"""The hand-written websocket framing of the media path (native/wsframe.pyx, used by
server.media_socket), as pure code: client frames in any chunking, fragmentation, control
frames, every protocol error with its close code, and the server's own frames."""
from __future__ import annotations

import os

import pytest

from native.wsframe import FrameReader, close_frame, control_frame, text_frame

MAX = 64 * 1024


def client_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes = b"\x37\xfa\x21\x3d",
                 masked: bool = True, rsv: int = 0) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_server_frame(data: bytes) -> tuple[int, bytes]:
    assert data[0] & 0x80 and not data[1] & 0x80  # final, unmasked
    n, at = data[1] & 0x7F, 2
    if n == 126:
        n, at = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        n, at = int.from_bytes(data[2:10], "big"), 10
    assert len(data) == at + n
    return data[0] & 0x0F, data[at:]


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 160, 216, 1001, 5000])
def test_unmask_matches_the_byte_by_byte_definition(n: int) -> None:
    # random ASCII under a random mask: the message is exactly the payload when every byte
    # (the 8-byte words and the tail) is unmasked as the RFC defines it
    payload, mask = bytes(b & 0x7F for b in os.urandom(n)), os.urandom(4)
    reader = FrameReader(MAX)
    reader.feed(client_frame(1, payload, mask=mask))
    assert list(reader.messages) == [payload.decode()] and reader.closed is None


@pytest.mark.parametrize("split", [1, 3, 8, 13])
def test_fragments_are_unmasked_each_from_its_own_start(split: int) -> None:
    # the second fragment lands at an offset in the message buffer that is not a multiple of
    # 4 or 8: its mask still starts at its own first byte
    payload = bytes(b & 0x7F for b in os.urandom(40))
    reader = FrameReader(MAX)
    reader.feed(client_frame(1, payload[:split], fin=False, mask=os.urandom(4))
                + client_frame(0, payload[split:], mask=os.urandom(4)))
    assert list(reader.messages) == [payload.decode()]


@pytest.mark.parametrize("n", [0, 125, 126, 300, 65535, 65536, 70000])
def test_text_frames_use_the_shortest_length_form(n: int) -> None:
    opcode, payload = parse_server_frame(text_frame("x" * n))
    assert (opcode, payload) == (1, b"x" * n)
    assert len(text_frame("x" * n)) - n == (2 if n < 126 else 4 if n < 65536 else 10)


def test_messages_come_out_whole_whatever_the_chunking() -> None:
    texts = ['{"event":"media"}', "ש" * 100, "y" * 300, "z" * 70]
    wire = b"".join(client_frame(1, t.encode()) for t in texts)
    for step in (1, 2, 7, 64, len(wire)):
        reader = FrameReader(MAX)
        for i in range(0, len(wire), step):
            reader.feed(wire[i:i + step])
        assert list(reader.messages) == texts and reader.closed is None and not reader.replies


def test_fragments_are_joined_and_a_ping_between_them_is_answered() -> None:
    reader = FrameReader(MAX)
    reader.feed(client_frame(1, b'{"event":', fin=False) + client_frame(9, b"hi")
                + client_frame(0, b'"start"', fin=False) + client_frame(0, b"}"))
    assert list(reader.messages) == ['{"event":"start"}']
    assert [parse_server_frame(r) for r in reader.replies] == [(0xA, b"hi")]


def test_binary_is_decoded_leniently_and_pongs_are_ignored() -> None:
    reader = FrameReader(MAX)
    reader.feed(client_frame(2, b"ok\xff") + client_frame(0xA, b""))
    assert list(reader.messages) == ["ok\ufffd"] and not reader.replies


@pytest.mark.parametrize("wire, code", [
    (client_frame(1, b"x", masked=False), 1002),
    (client_frame(1, b"x", rsv=0x40), 1002),  # permessage-deflate was never negotiated
    (client_frame(3, b"x"), 1002),
    (client_frame(0, b"x"), 1002),
    (client_frame(1, b"a", fin=False) + client_frame(1, b"b"), 1002),
    (client_frame(9, b"p" * 126), 1002),
    (client_frame(9, b"p", fin=False), 1002),
    (client_frame(8, b"\x03"), 1002),
    (client_frame(1, b"\xff\xfe"), 1007),
    (client_frame(1, b"x" * (MAX + 1))[:20], 1009),  # refused at its header: the payload never waited for
    (client_frame(1, b"x" * (MAX // 2), fin=False) + client_frame(0, b"x" * (MAX // 2 + 1))[:20], 1009),
])
def test_protocol_errors_close_with_their_code(wire: bytes, code: int) -> None:
    reader = FrameReader(MAX)
    reader.feed(wire)
    assert reader.closed is not None and reader.closed[0] == code
    opcode, payload = parse_server_frame(reader.replies[-1])
    assert opcode == 8 and int.from_bytes(payload[:2], "big") == code
    reader.feed(client_frame(1, b"after"))  # ignored once closed
    assert not reader.messages


def test_messages_before_an_error_are_kept() -> None:
    reader = FrameReader(MAX)
    reader.feed(client_frame(1, b"first") + client_frame(1, b"x", masked=False))
    assert list(reader.messages) == ["first"] and reader.closed == (1002, "client frame not masked")


@pytest.mark.parametrize("payload, closed", [
    (b"\x03\xe8bye", (1000, "bye")), (b"", (1000, "closed")), (b"\x03\xe9", (1001, "dropped")),
])
def test_the_peers_close_is_answered_and_reported(payload: bytes, closed: tuple[int, str]) -> None:
    reader = FrameReader(MAX)
    reader.feed(client_frame(1, b"last") + client_frame(8, payload))
    assert list(reader.messages) == ["last"] and reader.closed == closed
    opcode, body = parse_server_frame(reader.replies[-1])
    assert opcode == 8 and int.from_bytes(body[:2], "big") == closed[0]


def test_close_frame_without_code() -> None:
    assert parse_server_frame(close_frame(0)) == (8, b"")
    assert parse_server_frame(close_frame(1011, "x" * 200))[1] == b"\x03\xf3" + b"x" * 120


def test_control_frames() -> None:
    assert parse_server_frame(control_frame(0xA, b"hi")) == (0xA, b"hi")
    assert parse_server_frame(control_frame(0x9)) == (0x9, b"")
    with pytest.raises(ValueError):
        control_frame(0xA, b"p" * 126)  # a control payload is at most 125 bytes
    with pytest.raises(ValueError):
        control_frame(1, b"")
    with pytest.raises(OverflowError):
        close_frame(70000)


def test_text_frame_encodes_non_ascii_text() -> None:
    assert parse_server_frame(text_frame("שלום")) == (1, "שלום".encode())


def test_a_twilio_stream_split_byte_by_byte_across_feeds() -> None:
    texts = ['{"event":"connected","protocol":"Call","version":"1.0.0"}']
    texts += ['{"event":"media","sequenceNumber":"%d","media":{"payload":"%s"}}' % (i, "/" * 214) for i in range(3)]
    wire = b"".join(client_frame(1, t.encode(), mask=os.urandom(4)) for t in texts)
    wire += client_frame(9, b"ping") + client_frame(8, b"\x03\xe8done")
    reader = FrameReader(MAX)
    seen = []
    for i in range(len(wire)):
        reader.feed(wire[i:i + 1])
        while reader.messages:
            seen.append(reader.messages.popleft())
    assert seen == texts and reader.closed == (1000, "done")
    assert [parse_server_frame(r) for r in reader.replies] == [(0xA, b"ping"), (8, b"\x03\xe8")]


def test_a_message_of_exactly_max_passes_and_one_byte_more_is_refused() -> None:
    reader = FrameReader(MAX)
    reader.feed(client_frame(1, b"x" * MAX))
    assert reader.messages.popleft() == "x" * MAX and reader.closed is None
    reader.feed(client_frame(1, b"x" * (MAX + 1)))
    assert reader.closed == (1009, "message too big") and not reader.messages
    # a 64-bit length no message could have is refused at its header, like any other
    reader = FrameReader(MAX)
    reader.feed(b"\x81\xff" + b"\xff" * 8)
    assert reader.closed == (1009, "message too big")


def test_a_close_reason_in_invalid_utf8_is_decoded_leniently() -> None:
    reader = FrameReader(MAX)
    reader.feed(client_frame(8, b"\x0f\xa0bad \xff\xfe reason"))
    assert reader.closed == (4000, "bad \ufffd\ufffd reason")
    assert parse_server_frame(reader.replies[-1]) == (8, b"\x0f\xa0")


def test_the_owner_can_swap_replies_and_mark_the_reader_closed() -> None:
    # RawMediaTransport takes the replies by swapping in a new list, and marks a dropped
    # socket closed itself
    reader = FrameReader(MAX)
    reader.feed(client_frame(9, b"a"))
    replies, reader.replies = reader.replies, []
    assert [parse_server_frame(r) for r in replies] == [(0xA, b"a")]
    reader.feed(client_frame(9, b"b"))
    assert [parse_server_frame(r) for r in reader.replies] == [(0xA, b"b")] and len(replies) == 1
    reader.closed = (1006, "dropped")
    reader.feed(client_frame(1, b"after"))
    assert not reader.messages and reader.closed == (1006, "dropped")


def test_bytearray_and_memoryview_are_fed_like_bytes() -> None:
    wire = client_frame(1, b"one") + client_frame(1, b"two")
    reader = FrameReader(MAX)
    reader.feed(bytearray(wire[:5]))
    reader.feed(memoryview(wire)[5:])
    assert list(reader.messages) == ["one", "two"]


def test_the_reader_says_when_it_holds_part_of_a_message() -> None:
    reader = FrameReader(1024)
    whole = client_frame(1, b"hello")
    assert not reader.mid_message
    reader.feed(whole[:4])  # part of a frame
    assert reader.mid_message
    reader.feed(whole[4:])
    assert not reader.mid_message and list(reader.messages) == ["hello"]
    reader.feed(client_frame(1, b"hel", fin=False))  # a whole frame, but only the first fragment
    assert reader.mid_message
    reader.feed(client_frame(9, b"ping"))  # a control frame between fragments ends nothing
    assert reader.mid_message
    reader.feed(client_frame(0, b"lo"))
    assert not reader.mid_message and list(reader.messages)[-1] == "hello"
