"""The floor of the load comparison: the least CPU a Python server on trio spends on the callers.

Pipecat's pass-through pipeline (bench/pipecat_twilio.py) bounds the comparison from above;
this bounds it from below. It does only what no Twilio media server in Python on trio can
skip, on the same path as our server's best one (server/media_socket.py +
server/frame_tick.py), and nothing else:

- plain trio sockets, a tiny HTTP/1.1 handler: ``GET /version`` (200, so
  ``agentlocator load`` sees it is up), ``POST /twiml`` (the same TwiML our server answers,
  built by server/twiml.py with the `twilio` package's VoiceResponse, so the callers find the
  <Stream> URL where they look for it), and the websocket upgrade on ``/ws/twilio-media``;
- after the 101 the socket joins ONE shared tick: a periodic 20 ms timerfd
  (server.frame_tick.GridTimer) and one level-triggered epoll set of every call's socket,
  registered once. Each pass reads every readable socket, splits its frames in the native
  core (native.wsframe.FrameReader), decodes every message with msgspec as our server does
  (server.twilio_codec.TwilioParser), and sends every call one prebuilt 20 ms `media`
  message (μ-law silence; its websocket frame built once per call, when its `start` names
  the stream). On `stop`, the peer's close or a dropped link: a close frame and the socket
  is closed.

No VAD, no turn-taking, no speech, no store, no marks, no log line per message: it is not an
agent (the callers' turn and halt figures show unanswered turns). What it measures is server
CPU per call-second and the jitter of the frames it sends. One line per call at its end
(``CALL_END`` with ``frames_out`` and ``media_in``), so ``agentlocator load`` can count
missing frames as it does for our server.

Usage: ``python bench/floor_twilio.py PORT`` (loopback only; the project's venv), started by
``agentlocator load --floor`` (server/caller/load.py: FloorServer).
"""
from __future__ import annotations

import base64
import json
import math
import select
import socket as _stdlib_socket
import sys
import urllib.parse
from pathlib import Path

import trio

if __package__ in (None, ""):  # run as a script from anywhere: the project's packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsproto.utilities import generate_accept_token  # noqa: E402 - the accept hypercorn's handshake computes too

from native.wsframe import FrameReader, close_frame, text_frame  # noqa: E402
from server import twiml  # noqa: E402
from server.frame_tick import PERIOD_S, GridTimer  # noqa: E402
from server.twilio_codec import Media, Start, Stop, TwilioParser  # noqa: E402

WS_PATH = twiml.STREAM_PATH
MAX_MESSAGE = 64 * 1024  # as server/app.py's MAX_WS_MESSAGE
MAX_REQUEST = 64 * 1024  # headers and body of one HTTP request
REQUEST_TIMEOUT_S = 10.0
_READ_SIZE = 65536
_TICK_READS = 4  # reads of one socket per pass, as server/media_socket.py
SILENCE = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of μ-law silence


class _Call:
    """One upgraded websocket, owned by the tick from the 101 to its close."""

    __slots__ = ("sock", "raw", "fd", "reader", "parser", "frame", "pending", "call_sid", "frames_out",
                 "media_in", "ending")

    def __init__(self, sock: trio.socket.SocketType, early: bytes) -> None:
        self.sock = sock
        self.raw: _stdlib_socket.socket = sock._sock  # type: ignore[attr-defined]  # as media_socket does
        self.fd = self.raw.fileno()
        self.reader = FrameReader(MAX_MESSAGE)
        if early:
            self.reader.feed(early)
        self.parser = TwilioParser()
        self.frame: bytes | None = None  # the call's media frame, once `start` named the stream
        self.pending = bytearray()  # what the kernel did not take yet, in order
        self.call_sid = ""
        self.frames_out = 0
        self.media_in = 0
        self.ending: str | None = None  # why the call ends (closed at the end of this pass)


class FloorTick:
    """Every call's reads and sends, once per 20 ms, in one pass."""

    def __init__(self) -> None:
        self.calls: dict[int, _Call] = {}
        self.epoll = select.epoll()
        self._work = trio.Event()
        self._ended: list[_Call] = []  # reused: the pass allocates nothing of its own

    def add(self, sock: trio.socket.SocketType, early: bytes) -> None:
        call = _Call(sock, early)
        self.calls[call.fd] = call
        self.epoll.register(call.fd, select.EPOLLIN)  # level-triggered, once for the whole call
        self._work.set()

    async def run(self) -> None:
        timer = GridTimer.for_current_run()
        armed = False
        try:
            while True:
                if not self.calls:  # idle: no timer wake-ups
                    if armed and timer is not None:
                        timer.arm(0.0, 0.0)
                        armed = False
                    self._work = trio.Event()
                    await self._work.wait()
                now = trio.current_time()
                at = math.floor(now / PERIOD_S + 1.0) * PERIOD_S
                if timer is None:
                    await trio.sleep_until(at)
                else:
                    if not armed:
                        timer.arm(at, PERIOD_S)
                        armed = True
                    await timer.wait()
                self.one_pass()
        finally:
            if timer is not None:
                timer.close()
            self.epoll.close()

    def one_pass(self) -> None:
        calls = self.calls
        for fd, _ in self.epoll.poll(0):
            call = calls.get(fd)
            if call is not None:
                self._read(call)
        ended = self._ended
        for call in calls.values():
            if call.ending is not None:
                ended.append(call)
            elif call.frame is not None:
                self._send(call, call.frame)
                call.frames_out += 1
        if ended:
            for call in ended:
                self._end(call)
            ended.clear()

    def _read(self, call: _Call) -> None:
        reader = call.reader
        for _ in range(_TICK_READS):
            try:
                data = call.raw.recv(_READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                call.ending = call.ending or "dropped"
                break
            reader.feed(data)
            if len(data) < _READ_SIZE:
                break
        messages, parser = reader.messages, call.parser
        while messages:
            event = parser.parse(messages.popleft())
            if type(event) is Media:
                call.media_in += 1
            elif type(event) is Start:
                parser.stream_sid = event.stream_sid
                call.call_sid = event.call_sid
                call.frame = text_frame(json.dumps(
                    {"event": "media", "streamSid": event.stream_sid, "media": {"payload": SILENCE}},
                    separators=(",", ":")))
            elif type(event) is Stop:
                call.ending = "stop"
        if reader.replies:  # pongs, the answer to the peer's close
            replies, reader.replies = reader.replies, []
            for frame in replies:
                self._send(call, frame)
        if reader.closed is not None:
            call.ending = call.ending or f"closed {reader.closed[0]}"

    def _send(self, call: _Call, frame: bytes) -> None:
        if call.pending:
            call.pending += frame
            frame = bytes(call.pending)
            call.pending.clear()
        try:
            sent = call.raw.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            call.ending = call.ending or "send failed"
            return
        if sent < len(frame):
            call.pending += frame[sent:]

    def _end(self, call: _Call) -> None:
        del self.calls[call.fd]
        try:
            self.epoll.unregister(call.fd)
        except OSError:
            pass
        if call.reader.closed is None and call.ending == "stop":
            self._send(call, close_frame(1000, ""))
        call.sock.close()  # trio's close: tells trio's own epoll the fd is gone
        print(json.dumps({"event": "CALL_END", "call_sid": call.call_sid, "reason": call.ending,
                          "frames_out": call.frames_out, "media_in": call.media_in}), flush=True)


def _response(status: str, body: bytes, content_type: str) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


async def _send_all(sock: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[await sock.send(view):]


async def handle_http(sock: trio.socket.SocketType, tick: FloorTick) -> None:
    """One HTTP/1.1 request: /version, /twiml, or the websocket upgrade (the socket then
    belongs to the tick); every other request is a 404. Closes the socket unless upgraded."""
    upgraded = False
    try:
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = await sock.recv(65536)
                if not chunk or len(buf) + len(chunk) > MAX_REQUEST:
                    return
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _ = (request_line.split(" ", 2) + ["", ""])[:3]
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            path = target.split("?", 1)[0]
            if method == "GET" and path == "/version":
                await _send_all(sock, _response("200 OK", b'{"server":"floor"}', "application/json"))
            elif method == "POST" and path == "/twiml":
                length = int(headers.get("content-length") or 0)
                if length > MAX_REQUEST:
                    return
                while len(rest) < length:
                    chunk = await sock.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                form = dict(urllib.parse.parse_qsl(rest[:length].decode("latin-1")))
                host = headers.get("host", "127.0.0.1")
                xml = twiml.connect_stream(f"http://{host}", form)
                await _send_all(sock, _response("200 OK", xml.encode(), "application/xml"))
            elif method == "GET" and path == WS_PATH and headers.get("upgrade", "").lower() == "websocket" \
                    and headers.get("sec-websocket-key"):
                accept = generate_accept_token(headers["sec-websocket-key"].encode()).decode()
                await _send_all(sock, (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
                tick.add(sock, rest)
                upgraded = True
            else:
                await _send_all(sock, _response("404 Not Found", b"not found", "text/plain"))
    except (OSError, ValueError):  # a dropped or malformed request: closed, the server goes on
        pass
    finally:
        if not upgraded:
            sock.close()


async def serve(port: int, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on 127.0.0.1:``port`` (0: any free port, reported by ``nursery.start``)."""
    listener = trio.socket.socket()
    listener.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_REUSEADDR, 1)
    await listener.bind(("127.0.0.1", port))
    listener.listen(512)
    tick = FloorTick()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick.run)
        task_status.started(listener.getsockname()[1])
        with listener:
            while True:
                sock, _ = await listener.accept()
                sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)  # as trio's SocketStream
                nursery.start_soon(handle_http, sock, tick)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python bench/floor_twilio.py PORT", file=sys.stderr)
        return 2
    try:
        trio.run(serve, int(argv[0]))
    except* KeyboardInterrupt:  # agentlocator load stops it with SIGINT (raised through the nursery)
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
