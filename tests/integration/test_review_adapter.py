"""Review: the websocket adapter must not let a send race ahead of what the peer said last."""
from __future__ import annotations

import json
from typing import Any

import trio
import trio_websocket

from leads.base import NullRecorder
from server.settings import Settings
from server.transport import Transport, TransportClosed
from server.wiring import Wiring

from .harness import admitted_ids, running_server, start_frames

STOP = '{"event":"stop","sequenceNumber":"9","streamSid":"%s","stop":{"accountSid":"%s","callSid":"%s"}}'
HEARTBEAT = '{"event":"mark","streamSid":"MZ1","mark":{"name":"hb1"}}'


async def test_a_send_after_the_peer_left_does_not_preempt_its_unread_stop() -> None:
    # Twilio ends a call with `stop` and then closes the socket. The call's pacer sends every
    # 20 ms (heartbeats otherwise) and may do so before the receive loop has read the `stop`.
    # That send used to raise TransportClosed(1006) at once, so the call ended as "dropped"
    # (ws_disconnects_total{reason="dropped"}, a 'disconnect' on the dashboard) although the
    # caller simply hung up. The receive side must get to say why the call ended.
    got: dict[str, Any] = {}
    done = trio.Event()

    async def run_call(transport: Transport, deps: Any) -> None:
        try:
            got["first"] = await transport.receive()
            await trio.sleep(0.5)  # the peer sends `stop` and closes meanwhile
            try:
                await transport.send(HEARTBEAT)
                got["send_before"] = "ok"
            except TransportClosed as exc:
                got["send_before"] = f"closed {exc.code}"
            got["next"] = await transport.receive()
            try:
                await transport.receive()
            except TransportClosed:
                got["then"] = "closed"
            try:
                await transport.send(HEARTBEAT)
                got["send_after"] = "ok"
            except TransportClosed:
                got["send_after"] = "closed"  # once the disconnect was read, sends fail visibly
        finally:
            done.set()

    def factory(settings: Settings) -> Wiring:
        return Wiring(run_call=run_call, call_deps=None,
                      providers={"asr": "fake-asr", "tts": "fake-tts", "brain": "fake-brain"},
                      recorder=NullRecorder(), webhook_handlers=[])

    async with running_server(factory) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws/twilio-media"
        ids = await admitted_ids(port)
        stop = STOP % (ids.stream_sid, ids.account_sid, ids.call_sid)
        async with trio_websocket.open_websocket_url(url) as ws:
            for frame in start_frames(ids):
                await ws.send_message(frame)
            await ws.send_message(stop)
        with trio.fail_after(5):
            await done.wait()
    first = json.loads(got.pop("first"))  # the `start`, as the server's door rebuilt it
    assert first["event"] == "start" and first["start"]["callSid"] == ids.call_sid
    assert got == {"send_before": "ok", "next": stop, "then": "closed", "send_after": "closed"}
