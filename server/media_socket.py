"""The Twilio media websocket, framed by hand on the raw socket once hypercorn has upgraded it.

Every call is ~50 inbound and ~50 outbound websocket messages a second. Through the generic
stack each inbound message went socket → hypercorn's reader → wsproto → the ASGI queue →
Quart's reader task → Quart's queue → the session (four task switches, two channels), and
each outbound one Quart → ASGI send → wsproto → hypercorn's send lock → the socket. Here,
after the same handshake (the Quart route still runs every check — signatures, local-only
mode, busy — and chooses the subprotocol; hypercorn still sends the 101), the call's own
task reads the socket, parses the frames and returns the text; a send is one frame header
and one ``send()`` syscall. Hypercorn's reader task lends the socket: it parks in
:meth:`MediaWSStream.handle` until the call is over, then finds the socket closed and
cleans up the connection as usual (the ASGI app gets its ``websocket.disconnect``, so the
route's close grace still applies).

Only RFC 6455 without extensions (permessage-deflate is never negotiated: app.py): masked
client frames, fragmentation, ping/pong, close; a message over ``max_message`` closes 1009,
a protocol error 1002, invalid UTF-8 in a text message 1007. TLS connections and servers
other than hypercorn keep the generic path (the route falls back to Quart's websocket).
The frames are parsed, unmasked and decoded in the native core (native/wsframe.pyx). On
Linux under trio's own clock the kernel stamps every read with its last packet's arrival
(SO_TIMESTAMPNS), so a message read later in the shared tick's pass still knows when it came.
"""
from __future__ import annotations

import socket as _stdlib_socket
import struct
import time
from typing import Any, Callable

import trio

from native.wsframe import FrameReader, close_frame, text_frame
from server import frame_tick
from server.transport import TransportClosed

EXTENSION = "agentlocator.media"  # scope["extensions"] key of the offer
_READ_SIZE = 65536
_TICK_READS = 4  # reads of one socket per tick pass (a flooding peer waits for the next pass)
_YIELD_EVERY = 8  # messages handed out without blocking before a checkpoint (fairness)
_CLOSE_WAIT_S = 1.0  # after our close frame, how long we wait for the peer's
# Kernel receive timestamps (Linux): SO_TIMESTAMPNS (= SCM_TIMESTAMPNS; not in Python's socket
# module) puts, on each read, when the last packet it took arrived (CLOCK_REALTIME timespec).
_SO_TIMESTAMPNS = 35
_STAMP_SPACE = _stdlib_socket.CMSG_SPACE(16)
_TIMESPEC = struct.Struct("@qq")
# A stamp older than this (or in the future) is not believed: the wall clock it is taken on was
# stepped (NTP, a VM resumed), and one wrong sample would pull the stream clock's least-delay
# offset off for a long while. A message waits at most a period or two for the tick's pass.
_STAMP_AGE_MAX_S = 0.25


def _stamp_arrivals(sock: _stdlib_socket.socket) -> bool:
    """Have the kernel stamp every read with its arrival time — only where that time can be put
    on trio's axis (Linux, trio's own clock; not tests' virtual clocks)."""
    if frame_tick.system_clock_offset() is None:
        return False
    try:
        sock.setsockopt(_stdlib_socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


# -- the transport ---------------------------------------------------------------------------------

class RawMediaTransport:
    """server.transport.Transport on the upgraded socket itself (no queue, no extra task).

    Until hypercorn's reader hands the socket over (its first bytes after the 101), reads
    wait for it; from then on the caller of :meth:`receive` reads the socket. Sends go
    straight to the socket (a frame the kernel cannot take at once is flushed in order
    under a lock). Like the Quart path, a send that fails before the receive side has seen
    the peer leave is dropped silently: the receive side then reports how the call ended.
    """

    def __init__(self, stream: trio.SocketStream, max_message: int) -> None:
        self._stream = stream
        self._sock: _stdlib_socket.socket = stream.socket._sock  # type: ignore[attr-defined]
        self._fd = self._sock.fileno()
        self._reader = FrameReader(max_message)
        self._handed = trio.Event()  # set when hypercorn's reader has handed the socket over
        self.done = trio.Event()  # set when the socket is closed (hypercorn's reader resumes)
        self._pending = bytearray()
        self._send_lock = trio.Lock()
        self._send_dead = False
        self._ended: tuple[int, str] | None = None  # how the link ended, once receive() said so
        self._streak = 0
        self._maybe_more = True  # False once a read took less than it asked for
        self._handle: Callable[[str, float, bool], int] | None = None  # while parked in the tick
        self._plan: Callable[[], tuple[int, float]] | None = None  # with it: after each read, how the next
        self.read_at = 0.0  # the tick's passes leave this socket alone before then (BATCH)
        # Reads in the tick's pass then know when their last message arrived, not only that it
        # had by the pass (the stream clock wants arrival times: server.playback_clock).
        self.stamps_arrivals = _stamp_arrivals(self._sock)

    # hypercorn side --------------------------------------------------------------------------
    async def hand_over(self, data: bytes) -> None:
        """Called in hypercorn's reader task with the first bytes; parks it until the end."""
        self._reader.feed(data)
        self._handed.set()
        await self.done.wait()

    def stream_closed(self) -> tuple[int, str]:
        """Hypercorn saw the connection end (before a hand-over, or after we closed it)."""
        if self._reader.closed is None:
            self._reader.closed = (1006, "dropped")
        self._handed.set()
        self.done.set()
        return self._ended or self._reader.closed

    # Transport -----------------------------------------------------------------------------
    async def receive(self) -> str:
        reader = self._reader
        while True:
            if reader.messages:
                self._streak += 1
                if self._streak >= _YIELD_EVERY:
                    self._streak = 0
                    await trio.lowlevel.checkpoint()
                return reader.messages.popleft()
            if reader.replies:
                await self._flush_replies()
            if reader.closed is not None:
                self._ended = reader.closed
                await self._finish()
                raise TransportClosed(*reader.closed)
            if not self._handed.is_set():
                await self._handed.wait()
                continue
            await self._read()

    async def receive_in_tick(self, handle: Callable[[str, float, bool], int], mode: int,
                              plan: Callable[[], tuple[int, float]] | None = None) -> None:
        """Hand every message to ``handle(text, arrival time, exact)`` without waking this
        task, from the shared tick (server.frame_tick): in its pass (``mode`` BATCH: the time is
        the pass's, ``exact`` False) or as soon as data arrives (AT_ONCE: ``exact`` True).
        ``handle`` answers which it wants next, or WAKE when it needs an await; this returns
        then, or when something needs this task (control frames to answer, the peer gone). An
        exception of ``handle`` is raised here. Returns at once when :meth:`receive` has
        something to do first: call it next, then this again.

        ``plan``, when given, is asked at the start and after each read instead (``handle``'s
        answers then only matter when WAKE): which it wants next and, for the pass, the time
        before which the passes need not read the socket (what arrives meanwhile is read
        together then) — once per read, not per message."""
        reader = self._reader
        self.read_at = 0.0
        if plan is not None:
            mode, self.read_at = plan()
        if (not self._handed.is_set() or reader.messages or reader.replies or reader.closed is not None
                or self._ended is not None or mode == frame_tick.WAKE):
            return
        self._handle = handle
        self._plan = plan
        try:
            await frame_tick.shared().park_reader(self, mode)
        finally:
            self._handle = None
            self._plan = None
            self._maybe_more = True

    def fileno(self) -> int:
        return self._fd

    def tick_read(self, now: float, at_once: bool) -> int:
        """The tick found the socket readable: read it, hand out whole messages — each with
        ``now`` (``at_once``: read as it arrived, so that is its arrival), except, in the pass,
        the last one of a read whose last packet ended it: its arrival time as the kernel
        stamped it, exact."""
        reader = self._reader
        stamped = self.stamps_arrivals and not at_once
        stamp = 0.0
        for _ in range(_TICK_READS):
            try:
                if stamped:
                    data, ancillary, _, _ = self._sock.recvmsg(_READ_SIZE, _STAMP_SPACE)
                    for _, _, raw in ancillary:  # only the timestamp was asked for
                        if len(raw) >= _TIMESPEC.size:
                            sec, nsec = _TIMESPEC.unpack_from(raw)
                            stamp = sec + nsec * 1e-9
                else:
                    data = self._sock.recv(_READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not self._received(data):
                return frame_tick.WAKE
            if len(data) < _READ_SIZE:
                break
        messages = reader.messages
        handle = self._handle
        assert handle is not None
        wants = frame_tick.AT_ONCE if at_once else frame_tick.BATCH
        arrived = -1.0
        if stamp and not reader.mid_message:
            age = time.time() - stamp  # the realtime stamp on trio's clock
            if 0.0 <= age <= _STAMP_AGE_MAX_S:
                arrived = now - age
        while messages:
            text = messages.popleft()
            if arrived >= 0.0 and not messages:
                wants = handle(text, arrived, True)
            else:
                wants = handle(text, now, at_once)
            if wants == frame_tick.WAKE:
                return wants
        if reader.replies or reader.closed is not None:
            return frame_tick.WAKE
        plan = self._plan
        if plan is not None:
            wants, self.read_at = plan()
        return wants

    async def _read(self) -> None:
        try:
            if not self._maybe_more:  # the last read emptied the socket: a recv now would only fail
                raise BlockingIOError
            data = self._sock.recv(_READ_SIZE)
        except BlockingIOError:
            self._streak = 0
            try:
                await trio.lowlevel.wait_readable(self._fd)
            except trio.ClosedResourceError:
                data = b""
            else:
                try:
                    data = self._sock.recv(_READ_SIZE)
                except BlockingIOError:
                    return
                except OSError:
                    data = b""
        except OSError:
            data = b""
        self._maybe_more = len(data) == _READ_SIZE
        self._received(data)

    def _received(self, data: bytes) -> bool:
        """Feed what a read returned; False if it was the end of the stream (the link dropped,
        unless the peer's close came first)."""
        if data:
            self._reader.feed(data)
            return True
        if self._reader.closed is None:
            self._reader.closed = (1006, "dropped")
        return False

    async def _flush_replies(self) -> None:
        replies, self._reader.replies = self._reader.replies, []
        for frame in replies:
            await self._send_bytes(frame)

    async def send(self, text: str) -> None:
        if self._ended is not None:
            raise TransportClosed(1006, "peer gone")
        if self._send_dead:
            return
        await self._send_bytes(text_frame(text))

    def send_nowait(self, text: str) -> bool:
        """Send one text frame without waiting (the pacer's shared tick). False: the kernel
        did not take all of it; the rest is queued in order and ``drain()`` must be awaited."""
        if self._ended is not None:
            raise TransportClosed(1006, "peer gone")
        if self._send_dead:
            return True
        return self._try_send(text_frame(text))

    def _try_send(self, frame: bytes) -> bool:
        """Hand ``frame`` to the kernel now unless something is queued before it; what the
        kernel does not take is queued, in order. True: nothing of it waits (sent, or the
        link is dead)."""
        if not self._pending:
            try:
                sent = self._sock.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._send_dead = True
                return True
            if sent == len(frame):
                return True
            frame = frame[sent:]
        self._pending += frame
        return False

    async def drain(self) -> None:
        """Wait until everything queued has gone to the kernel."""
        if self._pending:
            await self._send_bytes(b"")

    async def _send_bytes(self, frame: bytes) -> None:
        if self._send_dead or self._try_send(frame):
            return
        async with self._send_lock:  # whoever gets here first flushes everything queued, in order
            while self._pending and not self._send_dead:
                try:
                    await trio.lowlevel.wait_writable(self._fd)
                    sent = self._sock.send(self._pending)
                except BlockingIOError:
                    continue
                except (OSError, trio.ClosedResourceError):
                    self._send_dead = True
                    self._pending.clear()
                    return
                del self._pending[:sent]

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.done.is_set():
            return
        if self._ended is None and self._reader.closed is None and not self._send_dead:
            with trio.move_on_after(_CLOSE_WAIT_S):
                await self._send_bytes(close_frame(code, reason))
                if self._handed.is_set():  # we own the read side: wait for the peer's close
                    while self._reader.closed is None:
                        self._reader.messages.clear()
                        await self._read()
                    self._reader.replies.clear()  # its close answers ours: nothing more to send
        self._ended = self._ended or (code, reason or "closed by us")
        if self._reader.closed is None:
            self._reader.closed = (code, "closed by us")
        await self._finish()

    async def _finish(self) -> None:
        """Close the socket and let hypercorn's reader resume (it then tidies the connection)."""
        if self.done.is_set():
            return
        if self._reader.replies:
            with trio.move_on_after(_CLOSE_WAIT_S):
                await self._flush_replies()
        self._send_dead = True
        self.done.set()
        self._handed.set()
        if self._handle is not None:  # closed from another task while the reader is parked
            frame_tick.shared().release_reader(self)
        self._stream.socket.close()  # wakes any task waiting on it with ClosedResourceError


# -- the hypercorn side ----------------------------------------------------------------------------

class _Offer:
    """What the route finds at scope["extensions"][EXTENSION]: accept on the raw socket."""

    def __init__(self, stream: "Any") -> None:
        self._ws = stream

    async def accept(self, subprotocol: str | None) -> RawMediaTransport:
        return await self._ws.accept_raw(subprotocol)


class _OfferingTaskGroup:
    """Hypercorn's per-connection task group, putting the offer into the scope it spawns with."""

    def __init__(self, inner: Any, offer: _Offer) -> None:
        self._inner = inner
        self._offer = offer

    async def spawn_app(self, app: Any, config: Any, scope: Any, send: Any) -> Any:
        scope.setdefault("extensions", {})[EXTENSION] = self._offer
        return await self._inner.spawn_app(app, config, scope, send)

    def spawn(self, func: Any, *args: Any) -> None:
        self._inner.spawn(func, *args)


def _raw_stream(send: Any) -> trio.SocketStream | None:
    """The plain TCP stream under hypercorn's h11 protocol (None: TLS, HTTP/2, not hypercorn's trio worker)."""
    protocol = getattr(send, "__self__", None)  # H11Protocol.stream_send
    server = getattr(getattr(protocol, "send", None), "__self__", None)  # TCPServer.protocol_send
    stream = getattr(server, "stream", None)
    return stream if isinstance(stream, trio.SocketStream) else None


def install(max_message: int) -> None:
    """Make hypercorn's h11 websocket streams offer the raw path (idempotent)."""
    from hypercorn.protocol import h11 as h11_protocol
    from hypercorn.protocol import ws_stream
    from hypercorn.protocol.events import Data, StreamClosed

    if getattr(h11_protocol.WSStream, "agentlocator_raw", False):
        return
    base = h11_protocol.WSStream

    class MediaWSStream(base):  # type: ignore[misc, valid-type]
        agentlocator_raw = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._raw: RawMediaTransport | None = None
            self._socket = _raw_stream(self.send)
            if self._socket is not None:
                self.task_group = _OfferingTaskGroup(self.task_group, _Offer(self))

        async def accept_raw(self, subprotocol: str | None) -> RawMediaTransport:
            if self._socket is None or self.state != ws_stream.ASGIWebsocketState.HANDSHAKE:
                raise RuntimeError("the raw media path is not available on this connection")
            self._raw = RawMediaTransport(self._socket, max_message)  # before the 101: the first bytes go to it
            await self._accept({"type": "websocket.accept", "subprotocol": subprotocol, "headers": []})
            return self._raw

        async def handle(self, event: Any) -> None:
            raw = self._raw
            if raw is None:
                return await super().handle(event)
            if isinstance(event, Data):
                if not raw.done.is_set():
                    await raw.hand_over(event.data)
                self.state = ws_stream.ASGIWebsocketState.CLOSED  # no close frame from hypercorn
                return None
            if isinstance(event, StreamClosed):
                if self.closed:
                    return None
                self.closed = True
                self.state = ws_stream.ASGIWebsocketState.CLOSED
                code, reason = raw.stream_closed()
                if self.app_put is not None:
                    await self.app_put({"type": "websocket.disconnect", "code": code, "reason": reason})
                return None
            return await super().handle(event)

        async def app_send(self, message: Any) -> None:
            if self._raw is not None and message is None:
                self.state = ws_stream.ASGIWebsocketState.CLOSED  # the raw transport closed it
            await super().app_send(message)

    h11_protocol.WSStream = MediaWSStream  # type: ignore[misc]
