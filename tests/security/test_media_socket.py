"""The raw media path over a real server and a hand-written client: the same handshake
checks as before, then fragmented messages, pings, the peer's close and oversize frames
handled on the raw socket; the Quart path (MEDIA_FAST_PATH=0) still works."""
from __future__ import annotations

import base64
import json
import os

import pytest
import trio

from tests.server.test_media_socket import client_frame

from .support import CONNECTED, WS_PATH, admitted, start_message, try_start, wait_for, world_server


class RawPeer:
    """A websocket client written by hand on a TCP stream (frames exactly as given)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    @classmethod
    async def connect(cls, port: int, extra: str = "") -> tuple["RawPeer", str]:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        await stream.send_all((
            f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
        peer = cls(stream)
        while b"\r\n\r\n" not in peer.buf:
            chunk = await stream.receive_some(65536)
            assert chunk, "closed during the handshake"
            peer.buf += chunk
        head, _, peer.buf = peer.buf.partition(b"\r\n\r\n")
        return peer, head.decode("latin1")

    async def frame(self) -> tuple[int, bytes] | None:
        """The next server frame (None: the server closed the TCP connection)."""
        while True:
            if len(self.buf) >= 2:
                n, at = self.buf[1] & 0x7F, 2
                if n == 126 and len(self.buf) >= 4:
                    n, at = int.from_bytes(self.buf[2:4], "big"), 4
                if n != 126 and len(self.buf) >= at + n:
                    opcode, payload = self.buf[0] & 0x0F, self.buf[at:at + n]
                    self.buf = self.buf[at + n:]
                    return opcode, payload
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            self.buf += chunk

    async def until(self, opcode: int) -> bytes:
        with trio.fail_after(5):
            while True:
                got = await self.frame()
                assert got is not None, f"closed before a frame with opcode {opcode}"
                if got[0] == opcode:
                    return got[1]


async def test_handshake_fragments_ping_and_the_peers_close() -> None:
    async with world_server() as (_, port, world):
        ids = await admitted(port)
        peer, head = await RawPeer.connect(port, "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                                 "Sec-WebSocket-Protocol: twilio.v1\r\n")
        assert head.lower().startswith("http/1.1 101") and "sec-websocket-extensions" not in head.lower()
        assert "sec-websocket-protocol: twilio.v1" in head.lower()
        start = start_message(ids).encode()
        await peer.stream.send_all(client_frame(1, CONNECTED.encode()) + client_frame(1, start[:50], fin=False)
                                   + client_frame(9, b"are you there") + client_frame(0, start[50:]))
        assert await peer.until(0xA) == b"are you there"
        await wait_for(lambda: world.brains)
        assert json.loads(await peer.until(1))["event"] in ("media", "mark")  # the greeting plays
        await peer.stream.send_all(client_frame(8, (1000).to_bytes(2, "big") + b"bye"))
        assert (await peer.until(8))[:2] == (1000).to_bytes(2, "big")
        with trio.fail_after(5):
            while await peer.frame() is not None:
                pass  # the server closes the TCP connection after the close handshake
        await wait_for(lambda: world.results, 5.0)
        assert world.results[0].close_reason == "remote_close" and world.results[0].close_code == 1000


async def test_an_oversized_frame_is_refused_at_its_header() -> None:
    """The raw path closes 1009 as soon as the frame header announces too much (nothing of
    the payload is buffered); the call ends at once and the server keeps serving."""
    async with world_server() as (_, port, world):
        ids = await admitted(port)
        peer, _ = await RawPeer.connect(port)
        await peer.stream.send_all(client_frame(1, CONNECTED.encode()) + client_frame(1, start_message(ids).encode()))
        await wait_for(lambda: world.brains)
        await peer.stream.send_all(client_frame(1, b"x" * (70 * 1024))[:14])  # header and mask only
        assert (await peer.until(8))[:2] == (1009).to_bytes(2, "big")
        await wait_for(lambda: world.results, 5.0)
        assert world.results[0].close_code in (1009, 1000)
        ids2 = await admitted(port)
        code, _ = await try_start(port, [CONNECTED, start_message(ids2), json.dumps(
            {"event": "stop", "streamSid": ids2.stream_sid, "stop": {}})])
        assert code == 1000


@pytest.mark.parametrize("fast_path", ["1", "0"])
async def test_a_whole_call_on_either_path(fast_path: str) -> None:
    async with world_server({"MEDIA_FAST_PATH": fast_path}) as (_, port, world):
        ids = await admitted(port)
        silence = base64.b64encode(b"\xff" * 160).decode()
        media = [json.dumps({"event": "media", "streamSid": ids.stream_sid,
                             "media": {"track": "inbound", "chunk": str(k), "timestamp": str(20 * k),
                                       "payload": silence}}) for k in range(1, 30)]
        code, got = await try_start(port, [CONNECTED, start_message(ids), *media, json.dumps(
            {"event": "stop", "streamSid": ids.stream_sid, "stop": {}})])
        assert code == 1000
        await wait_for(lambda: world.results, 5.0)
        assert world.results[0].close_reason == "twilio_stop"
