"""Many simulated calls in one process, cheaply: one selector loop instead of trio-websocket.

For load runs the callers must cost far less than the server they measure. The trio shell in
client.py spends most of a call's CPU in the scheduler and wsproto (three tasks and a memory
channel per call, a wake-up per message); here one `selectors` loop serves every call of the
process: each due 20 ms frame is built by the same sans-IO :class:`SimulatedCall`, framed by
hand (RFC 6455 client frames; the mask key is all zero, which XORs to the payload itself:
legal on the wire, and the server unmasks exactly as it would any key) and written with one
`send`; whatever the server sent is read when the socket is readable and stamped with the time
it was read. The TwiML fetch and the HTTP upgrade are blocking and run in a small thread pool,
so a slow handshake never delays another call's frames.

The call itself (script, playback model, marks, clears, figures) is the very same as with
`place_call`; only the transport shell differs.
"""
from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import os
import selectors
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass, field

from native.config import FRAME_MS
from server.caller.analysis import CallerFigures, analyse
from server.caller.call import CallIds, Prepared, SimulatedCall
from server.caller.client import fetch_stream, twiml_url_for

FRAME_S = FRAME_MS / 1000
_ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One unfragmented client frame, masked with the all-zero key."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", n)
    return head + _ZERO_MASK + payload


def parse_frames(buf: bytearray) -> list[tuple[bool, int, bytes]]:
    """Complete frames at the front of ``buf`` (consumed): (fin, opcode, payload)."""
    out = []
    pos = 0
    n = len(buf)
    while n - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if n - pos < 4:
                break
            length = struct.unpack_from("!H", buf, pos + 2)[0]
            head = 4
        elif length == 127:
            if n - pos < 10:
                break
            length = struct.unpack_from("!Q", buf, pos + 2)[0]
            head = 10
        mask = b""
        if b1 & 0x80:  # a server must not mask; unmask anyway
            if n - pos < head + 4:
                break
            mask = bytes(buf[pos + head : pos + head + 4])
            head += 4
        if n - pos < head + length:
            break
        payload = bytes(buf[pos + head : pos + head + length])
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        out.append((bool(b0 & 0x80), b0 & 0x0F, payload))
        pos += head + length
    del buf[:pos]
    return out


def _connect(url: str, ids: CallIds, auth_token: str | None, timeout_s: float = 15.0
             ) -> tuple[socket.socket, bytes, CallIds, float]:
    """Blocking (run in a pool thread): TwiML fetch (the stream token), TCP connect, upgrade.
    Returns the socket (non-blocking), bytes already read past the handshake, the ids with
    their stream parameters, and how long it took."""
    t = time.monotonic()
    _, params = fetch_stream(twiml_url_for(url), ids, auth_token, timeout_s=timeout_s)
    ids = dataclasses.replace(ids, parameters=params)
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    headers = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket",
               "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if auth_token:
        from server.security import SignatureChecker

        headers.append(f"X-Twilio-Signature: {SignatureChecker(auth_token).sign(url, {})}")
    sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"{url}: closed during the websocket handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        sock.close()
        raise ConnectionError(f"{url}: upgrade refused: {status.decode(errors='replace')}")
    sock.setblocking(False)
    return sock, rest, ids, time.monotonic() - t


@dataclass
class LeanOutcome:
    call: SimulatedCall
    figures: CallerFigures
    connect_s: float = 0.0


@dataclass
class _Live:
    index: int
    call: SimulatedCall
    sock: socket.socket
    t0: float
    linger_s: float
    max_duration_s: float
    k: int = 0
    rbuf: bytearray = field(default_factory=bytearray)
    wbuf: bytearray = field(default_factory=bytearray)
    fragments: list[bytes] = field(default_factory=list)
    stop_sent_at: float | None = None
    closed: bool = False
    connect_s: float = 0.0

    @property
    def next_deadline(self) -> float:
        return self.t0 + (self.k + 1) * FRAME_S


@dataclass
class LeanSpec:
    steps: list[Prepared]
    ids: CallIds
    start_offset_s: float = 0.0
    end_at_s: float | None = None
    max_duration_s: float = 1800.0


def run_calls(url: str, specs: list[LeanSpec], *, auth_token: str | None = None, linger_s: float = 2.0,
              connect_threads: int = 4, deadline_s: float | None = None) -> list[LeanOutcome | Exception]:
    """Run every call of ``specs`` (each starting ``start_offset_s`` after now) to its end, in
    this thread; returns one outcome (or the exception that stopped it) per spec, in order."""
    sel = selectors.DefaultSelector()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    sel.register(wake_r, selectors.EVENT_READ, None)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=connect_threads)
    start = time.monotonic()
    hard_deadline = None if deadline_s is None else start + deadline_s
    results: list[LeanOutcome | Exception | None] = [None] * len(specs)
    pending = sorted(range(len(specs)), key=lambda i: specs[i].start_offset_s)
    connecting: dict[concurrent.futures.Future, int] = {}
    live: dict[int, _Live] = {}

    def send(lv: _Live, data: bytes) -> None:
        if lv.closed:
            return
        if lv.wbuf:
            lv.wbuf += data
            return
        try:
            sent = lv.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            finish(lv, None, "send failed")
            return
        if sent < len(data):
            lv.wbuf += data[sent:]
            sel.modify(lv.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, lv)

    def send_text(lv: _Live, text: str) -> None:
        send(lv, client_frame(0x1, text.encode()))

    def finish(lv: _Live, code: int | None, reason: str) -> None:
        if lv.closed:
            return
        now = time.monotonic() - lv.t0
        if lv.call.close_code is None and code is not None:
            lv.call.server_closed(now, code, reason)
        elif lv.call.close_code is None:
            lv.call.server_closed(now, None, reason)
        lv.closed = True
        try:
            sel.unregister(lv.sock)
        except (KeyError, ValueError):
            pass
        lv.sock.close()
        results[lv.index] = LeanOutcome(lv.call, analyse(lv.call), lv.connect_s)
        del live[lv.index]

    def on_readable(lv: _Live) -> None:
        try:
            chunk = lv.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            finish(lv, None, f"recv failed: {exc}")
            return
        if not chunk:
            finish(lv, None, "connection dropped")
            return
        now = time.monotonic() - lv.t0
        lv.rbuf += chunk
        for fin, opcode, payload in parse_frames(lv.rbuf):
            if opcode in (0x1, 0x2, 0x0):
                lv.fragments.append(payload)
                if not fin:
                    continue
                text = b"".join(lv.fragments).decode("utf-8", errors="replace")
                lv.fragments.clear()
                for out in lv.call.on_message(now, text):
                    send_text(lv, out)
            elif opcode == 0x8:  # close: answer it, the call is over
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                reason = payload[2:].decode("utf-8", errors="replace")
                send(lv, client_frame(0x8, payload[:2]))
                finish(lv, code, reason)
                return
            elif opcode == 0x9:
                send(lv, client_frame(0xA, payload))

    def on_writable(lv: _Live) -> None:
        try:
            sent = lv.sock.send(lv.wbuf)
        except BlockingIOError:
            return
        except OSError:
            finish(lv, None, "send failed")
            return
        del lv.wbuf[:sent]
        if not lv.wbuf:
            sel.modify(lv.sock, selectors.EVENT_READ, lv)

    def connected(i: int, fut: concurrent.futures.Future) -> None:
        try:
            sock, rest, ids, took = fut.result()
        except Exception as exc:  # noqa: BLE001 - a refused call is a result
            results[i] = exc
            return
        spec = specs[i]
        call = SimulatedCall(spec.steps, ids, end_at_s=spec.end_at_s)
        lv = _Live(i, call, sock, time.monotonic(), linger_s, spec.max_duration_s, connect_s=took)
        live[i] = lv
        sel.register(sock, selectors.EVENT_READ, lv)
        for msg in call.start_messages():
            send_text(lv, msg)
        if rest:
            lv.rbuf += rest

    try:
        while pending or connecting or live:
            now = time.monotonic()
            if hard_deadline is not None and now > hard_deadline:
                for lv in list(live.values()):
                    lv.call.error(now - lv.t0, "load run deadline", protocol=False)
                    finish(lv, None, "deadline")
                break
            while pending and start + specs[pending[0]].start_offset_s <= now:
                i = pending.pop(0)
                fut = pool.submit(_connect, url, specs[i].ids, auth_token)
                fut.add_done_callback(lambda _f: wake_w.send(b"x"))
                connecting[fut] = i
            for lv in list(live.values()):  # due frames (and the stop linger)
                while not lv.closed and not lv.call.done and lv.next_deadline <= now:
                    late = (now - lv.next_deadline) * 1000
                    lv.call.tick_late_ms.append(late)
                    for out in lv.call.tick(lv.k, now - lv.t0):
                        send_text(lv, out)
                    lv.k += 1
                    if lv.k * FRAME_S > lv.max_duration_s and not lv.call.done:
                        lv.call.error(lv.k * FRAME_S, f"call exceeded {lv.max_duration_s:g} s", protocol=False)
                        lv.call.done = True
                if lv.closed:
                    continue
                if lv.call.done and lv.stop_sent_at is None:
                    lv.stop_sent_at = now
                    if lv.call.ended_at == 0.0:
                        lv.call.ended_at = now - lv.t0
                if lv.stop_sent_at is not None and now - lv.stop_sent_at > lv.linger_s:
                    send(lv, client_frame(0x8, struct.pack("!H", 1000)))
                    finish(lv, None, "server did not close after stop")
            wakes = [lv.next_deadline for lv in live.values() if not lv.call.done]
            wakes += [lv.stop_sent_at + lv.linger_s for lv in live.values() if lv.stop_sent_at is not None]
            if pending:
                wakes.append(start + specs[pending[0]].start_offset_s)
            timeout = max(0.0, min(wakes) - time.monotonic()) if wakes else 0.05
            for key, mask in sel.select(min(timeout, 0.25)):
                if key.data is None:  # a handshake finished
                    try:
                        wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    for fut in [f for f in connecting if f.done()]:
                        connected(connecting.pop(fut), fut)
                    continue
                lv = key.data
                if lv.closed:
                    continue
                if mask & selectors.EVENT_WRITE:
                    on_writable(lv)
                if not lv.closed and mask & selectors.EVENT_READ:
                    on_readable(lv)
    finally:
        for lv in list(live.values()):
            finish(lv, None, "runner stopped")
        pool.shutdown(wait=True, cancel_futures=True)
        sel.close()
        wake_r.close()
        wake_w.close()
    return [r if r is not None else RuntimeError("call never started") for r in results]
