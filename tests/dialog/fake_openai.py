"""A fake OpenAI Chat Completions server on 127.0.0.1: real HTTP/1.1 (h11) and real SSE.

Each request takes the next :class:`Script` from the queue (or the default one) and plays it:
status, delays between deltas, content deltas, tool-call argument fragments, or a raw
malformed body. Every request body is kept for assertions (prompt, history, tools).
"""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

import h11
import trio


@dataclass
class Script:
    text: str = ""
    tool_args: dict | None = None
    tool_fragments: list[str] | None = None  # raw argument fragments (malformed on purpose)
    status: int = 200
    first_delay: float = 0.0  # before the first delta
    delay: float = 0.0  # between deltas
    gate_after: int | None = None  # wait for FakeOpenAI.gate after this many content deltas
    raw_body: bytes | None = None  # sent as the SSE body verbatim
    split: str = "word"  # "word" | "char" | "whole": how the text is cut into deltas
    hangup_after: int | None = None  # drop the connection after this many content deltas
    tool_name: str = "update_lead"  # the function the tool call names

    def deltas(self) -> list[str]:
        if self.split == "whole":
            return [self.text] if self.text else []
        if self.split == "char":
            return list(self.text)
        parts = self.text.split(" ")
        return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts) if p or i < len(parts) - 1]


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"


@dataclass
class FakeOpenAI:
    scripts: deque = field(default_factory=deque)
    default: Script = field(default_factory=lambda: Script("באיזה אזור מחפשים?"))
    requests: list[dict] = field(default_factory=list)
    gate: trio.Event = field(default_factory=trio.Event)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(conn, stream)
                if request is None:
                    return
                await self._answer(conn, stream, request, body)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return  # the client hung up mid-stream (deadline, cancellation): that is allowed
        finally:
            await stream.aclose()

    async def _read_request(self, conn: h11.Connection, stream: trio.SocketStream):
        request = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    return None, b""
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, body
            elif isinstance(event, h11.ConnectionClosed):
                return None, b""

    async def _send(self, conn: h11.Connection, stream: trio.SocketStream, event) -> None:
        data = conn.send(event)
        if data:
            await stream.send_all(data)

    async def _answer(self, conn, stream, request, body: bytes) -> None:
        payload = json.loads(body or b"{}")
        payload["_path"] = request.target.decode()
        payload["_auth"] = dict(request.headers).get(b"authorization", b"").decode()
        self.requests.append(payload)
        script = self.scripts.popleft() if self.scripts else self.default
        if script.status != 200:
            err = json.dumps({"error": {"message": "fake failure", "type": "server_error", "code": None}}).encode()
            await self._send(conn, stream, h11.Response(status_code=script.status, headers=[
                ("content-type", "application/json"), ("content-length", str(len(err)))]))
            await self._send(conn, stream, h11.Data(data=err))
            await self._send(conn, stream, h11.EndOfMessage())
            return
        await self._send(conn, stream, h11.Response(status_code=200, headers=[("content-type", "text/event-stream")]))
        if script.raw_body is not None:
            await self._send(conn, stream, h11.Data(data=script.raw_body))
            await self._send(conn, stream, h11.EndOfMessage())
            return
        await trio.sleep(script.first_delay)
        await self._send(conn, stream, h11.Data(data=_chunk({"role": "assistant", "content": ""})))
        for i, piece in enumerate(script.deltas()):
            if script.gate_after is not None and i == script.gate_after:
                await self.gate.wait()
            if script.hangup_after is not None and i == script.hangup_after:
                raise trio.BrokenResourceError("fake server hangs up mid-stream")
            if i and script.delay:
                await trio.sleep(script.delay)
            await self._send(conn, stream, h11.Data(data=_chunk({"content": piece})))
        fragments = script.tool_fragments
        if fragments is None and script.tool_args is not None:
            raw = json.dumps(script.tool_args, ensure_ascii=False)
            fragments = [raw[: len(raw) // 2], raw[len(raw) // 2 :]]
        for j, frag in enumerate(fragments or ()):
            call: dict = {"index": 0, "function": {"arguments": frag}}
            if j == 0:
                call.update(id="call_fake", type="function")
                call["function"]["name"] = script.tool_name
            await self._send(conn, stream, h11.Data(data=_chunk({"tool_calls": [call]})))
        await self._send(conn, stream, h11.Data(data=_chunk({}, "tool_calls" if fragments else "stop")))
        await self._send(conn, stream, h11.Data(data=b"data: [DONE]\n\n"))
        await self._send(conn, stream, h11.EndOfMessage())
