"""Media websocket cost per inbound Twilio message: one masked client text frame (a real-shaped
``media`` JSON, 160 μ-law bytes as base64) fed as it comes off the socket, the whole message
taken out as str.

Baselines, measured in the same run: wsproto's frame parser (what hypercorn and the generic path
use: ``FrameProtocol(client=False)``, ``receive_bytes`` + ``received_frames``), and the
pure-Python reader server/media_socket.py had before native/wsframe.pyx (kept here, only as a
baseline). Each frame is its own bytes object with its own mask, as each recv() returns.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_core_wsframe.py -s -o addopts="")
"""
from __future__ import annotations

import base64
import json
import os
import random
import time
from collections import deque

from wsproto.frame_protocol import FrameProtocol

from native.wsframe import FrameReader

from bench.support import pick, target
from tests.server.test_media_socket import client_frame

MAX = 64 * 1024
N = pick(5000, 50)  # messages per timed pass (5000: 100 s of one call's inbound stream)
TEXTS = [
    json.dumps({
        "event": "media", "sequenceNumber": str(i + 2), "streamSid": "MZ" + "0123456789abcdef" * 2,
        "media": {"track": "inbound", "chunk": str(i + 1), "timestamp": str(20 * i),
                  "payload": base64.b64encode(os.urandom(160)).decode()},
    }, separators=(",", ":"))
    for i in range(N)
]


def masked(text: str) -> bytes:
    return client_frame(1, text.encode(), mask=os.urandom(4))


WIRE = [masked(t) for t in TEXTS]


def random_stream(rng: random.Random) -> bytes:
    """Frames of every kind, errors included, for the like-for-like check of the baseline."""
    frames = []
    for _ in range(rng.randint(1, 12)):
        mask = rng.randbytes(4)
        kind = rng.randrange(14)
        if kind <= 3:
            frames.append(client_frame(1, rng.choice(["x", "שלום", "{}", "y" * 300, "z" * 70000]).encode(), mask=mask))
        elif kind == 4:
            frames.append(client_frame(2, rng.randbytes(rng.randint(0, 40)), mask=mask))
        elif kind == 5:
            frames.append(client_frame(1, b"ok" + rng.randbytes(3), mask=mask))  # often invalid UTF-8
        elif kind == 6:
            frames += [client_frame(1, b"part", fin=False, mask=mask), client_frame(9, b"p", mask=mask),
                       client_frame(0, b"x" * rng.choice([1, 40000]), mask=mask)]
        elif kind == 7:
            frames.append(client_frame(9, rng.randbytes(rng.choice([0, 5, 125, 126])), mask=mask))
        elif kind == 8:
            frames.append(client_frame(10, b"", mask=mask))
        elif kind == 9:
            frames.append(client_frame(8, rng.choice([b"", b"\x03", b"\x03\xe8", b"\x03\xe9bye", b"\x0f\xa0\xff"]),
                                       mask=mask))
        elif kind == 10:
            frames.append(client_frame(rng.choice([0, 3, 11]), b"q", mask=mask))
        elif kind == 11:
            frames.append(client_frame(1, b"r", mask=mask, masked=False))
        elif kind == 12:
            frames.append(client_frame(1, b"r", mask=mask, rsv=0x40))
        else:
            frames.append(client_frame(9, b"f", fin=False, mask=mask))
    return b"".join(frames)


def same_as_baseline(seed: int) -> bool:
    rng = random.Random(seed)
    wire = random_stream(rng)
    cuts = sorted(rng.sample(range(1, len(wire)), min(len(wire) - 1, rng.choice([0, 1, 5, 50]))))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    ours, base = FrameReader(MAX), _PythonFrameReader(MAX)
    for chunk in chunks:
        ours.feed(chunk)
        base.feed(chunk)
    return (list(ours.messages), ours.replies, ours.closed) == (list(base.messages), base.replies, base.closed)


def _read_all(reader) -> list[str]:
    feed, messages = reader.feed, reader.messages
    out = []
    for frame in WIRE:
        feed(frame)
        while messages:
            out.append(messages.popleft())
    return out


def native_reader() -> list[str]:
    return _read_all(FrameReader(MAX))


def wsproto_reader() -> list[str]:
    proto = FrameProtocol(client=False, extensions=[])
    out = []
    for frame in WIRE:
        proto.receive_bytes(frame)
        for f in proto.received_frames():
            out.append(f.payload)  # a text frame's payload comes out decoded (str)
    return out


def python_reader() -> list[str]:
    return _read_all(_PythonFrameReader(MAX))


def per_message_ns(fn) -> float:
    best = float("inf")
    for _ in range(pick(7, 1)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / N * 1e9


def test_wsframe_per_message(benchmark) -> None:
    assert native_reader() == wsproto_reader() == python_reader() == TEXTS
    # like for like: the old reader agrees with ours on random streams of every frame kind,
    # errors included, in random chunkings (so the ratio compares the same work)
    assert all(same_as_baseline(seed) for seed in range(pick(500, 100)))
    benchmark.pedantic(native_reader, rounds=5, iterations=1)
    ours = per_message_ns(native_reader)
    ws = per_message_ns(wsproto_reader)
    py = per_message_ns(python_reader)
    size = len(WIRE[0])
    benchmark.extra_info.update(ns_per_message=round(ours, 1), wsproto_ns=round(ws, 1), python_ns=round(py, 1),
                                ratio_wsproto=round(ws / ours, 2), ratio_python=round(py / ours, 2))
    print(
        f"\n[core] media websocket, one masked {size}-byte Twilio media frame -> str: {ours:.0f} ns per message; "
        f"wsproto {ws:.0f} ns -> {ws / ours:.1f}x; the old pure-Python reader {py:.0f} ns -> {py / ours:.1f}x"
    )
    target("core", "wsframe vs wsproto, per inbound message", ws / ours, 10, "x", at_least=True)
    target("core", "wsframe vs the old pure-Python reader", py / ours, 5, "x", at_least=True)


# -- the baseline: server/media_socket.py's reader before the native one (not used elsewhere) ----

def _close_frame(code: int, reason: str = "") -> bytes:
    body = code.to_bytes(2, "big") + reason.encode()[:120] if code else b""
    return bytes((0x88, len(body))) + body


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * ((n >> 2) + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")


class _PythonFrameReader:
    __slots__ = ("max_message", "messages", "replies", "closed", "_buf", "_frag_op", "_frag")

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self.messages: deque[str] = deque()
        self.replies: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self._buf = b""
        self._frag_op = 0
        self._frag: list[bytes] = []

    def _fail(self, code: int, reason: str) -> None:
        self.replies.append(_close_frame(code, reason))
        self.closed = (code, reason)
        self._buf = b""

    def feed(self, data: bytes) -> None:
        if self.closed is not None:
            return
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if end - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = pos + 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = pos + 10
            opcode = b0 & 0x0F
            if b0 & 0x70:
                return self._fail(1002, "reserved bits set (no extension was negotiated)")
            if not b1 & 0x80:
                return self._fail(1002, "client frame not masked")
            if opcode >= 8:
                if not b0 & 0x80 or length > 125:
                    return self._fail(1002, "bad control frame")
            elif length + sum(map(len, self._frag)) > self.max_message:
                return self._fail(1009, "message too big")
            start = head + 4
            if end - start < length:
                break
            mask = buf[head:start]
            pos = start + length
            payload = _unmask(buf[start:pos], mask) if length else b""
            if opcode == 1 or opcode == 2:
                if self._frag_op:
                    return self._fail(1002, "new message inside a fragmented one")
                if b0 & 0x80:
                    if not self._message(opcode, payload):
                        return None
                else:
                    self._frag_op = opcode
                    self._frag = [payload]
            elif opcode == 0:
                if not self._frag_op:
                    return self._fail(1002, "continuation without a message")
                self._frag.append(payload)
                if b0 & 0x80:
                    op, parts = self._frag_op, self._frag
                    self._frag_op, self._frag = 0, []
                    if not self._message(op, b"".join(parts)):
                        return None
            elif opcode == 8:
                return self._peer_close(payload)
            elif opcode == 9:
                self.replies.append(bytes((0x8A, length)) + payload)
            elif opcode != 10:
                return self._fail(1002, f"unknown opcode {opcode}")
        self._buf = buf[pos:]
        return None

    def _message(self, opcode: int, payload: bytes) -> bool:
        if opcode == 2:
            self.messages.append(payload.decode("utf-8", errors="replace"))
            return True
        try:
            self.messages.append(payload.decode("utf-8"))
        except UnicodeDecodeError:
            self._fail(1007, "invalid UTF-8 in a text message")
            return False
        return True

    def _peer_close(self, payload: bytes) -> None:
        if len(payload) == 1:
            return self._fail(1002, "bad close frame")
        code = int.from_bytes(payload[:2], "big") if payload else 1000
        reason = payload[2:].decode("utf-8", errors="replace")
        self.replies.append(_close_frame(code if payload else 1000))
        self.closed = (code, reason or ("closed" if code == 1000 else "dropped"))
        self._buf = b""
        return None
