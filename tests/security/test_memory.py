"""Finding 4, measured: one websocket grew the server by ~1 GB in 3 s. Now 40 MB of junk on one
call (unique unknown event names, bad base64, wrong types, frames for another stream,
binary garbage, oversized parameters — every message just under the 64 KiB limit) leave
the server process's RSS within +20 MB, and the call still ends normally."""
from __future__ import annotations

import json
import random
from pathlib import Path

import trio
import trio_websocket

from server.caller.call import CallIds, new_sid

from .support import CONNECTED, MAX_WS_MESSAGE, WS_PATH, ServerProcess, server_close, start_message, twiml_params

JUNK_BYTES = 40 * 1024 * 1024
LIMIT_GROWTH = 20 * 1024 * 1024


def junk_frames(stream_sid: str, total: int):  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    size = MAX_WS_MESSAGE - 1024
    sent = i = 0
    while sent < total:
        # 60% of it new unknown event names (what grew the server by ~1 GB), the rest the other kinds
        kind = 0 if i % 5 < 3 else 1 + (i // 5 * 2 + i % 5 - 3) % 6
        if kind == 0:  # a new unknown event name each time, as long as a message can be
            frame = json.dumps({"event": f"x{i}-" + "n" * (size - 40), "streamSid": stream_sid})
        elif kind == 1:  # bad base64
            frame = json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": "!" * (size - 80)}})
        elif kind == 2:  # wrong types, deep-ish
            frame = json.dumps({"event": "media", "streamSid": stream_sid, "media": [[i] * 100] * (size // 1200)})
        elif kind == 3:  # valid audio for another stream
            frame = json.dumps({"event": "media", "streamSid": new_sid("MZ"), "media": {"payload": "/" * (size - 100)}})
        elif kind == 4:  # binary garbage
            frame = rng.randbytes(size)
        elif kind == 5:  # a second `start` with huge parameters
            frame = json.dumps({"event": "start", "start": {"callSid": new_sid("CA"), "customParameters": {
                f"p{j}": "v" * 1000 for j in range(size // 1100)}}})
        else:  # a mark with a huge name (marks echo our own names; this one is not ours)
            frame = json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": "m" * (size - 80)}})
        assert len(frame) <= MAX_WS_MESSAGE
        yield frame
        sent += len(frame)
        i += 1


async def junk_call(port: int) -> tuple[int | None, int]:
    ids = CallIds()
    ids.parameters = await twiml_params(port, ids)
    sent = 0
    with trio.fail_after(45):  # bounded in time: 40 MB over loopback takes a few seconds
        return await _junk(port, ids)


async def _junk(port: int, ids: CallIds) -> tuple[int | None, int]:
    sent = 0
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}{WS_PATH}") as ws:
        await ws.send_message(CONNECTED)
        await ws.send_message(start_message(ids))
        for frame in junk_frames(ids.stream_sid, JUNK_BYTES):
            await ws.send_message(frame)
            sent += len(frame)
        await ws.send_message(json.dumps({"event": "stop", "streamSid": ids.stream_sid, "stop": {}}))
        code, _ = await server_close(ws, 20.0)
    return code, sent


async def short_call(port: int) -> None:
    ids = CallIds()
    ids.parameters = await twiml_params(port, ids)
    with trio.fail_after(30):
        await _warm(port, ids)


async def _warm(port: int, ids: CallIds) -> None:
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}{WS_PATH}") as ws:
        await ws.send_message(CONNECTED)
        await ws.send_message(start_message(ids))
        for frame in junk_frames(ids.stream_sid, 2 * 1024 * 1024):  # warms every code path once
            await ws.send_message(frame)
        await ws.send_message(json.dumps({"event": "stop", "streamSid": ids.stream_sid, "stop": {}}))
        await server_close(ws, 20.0)


def test_40_mb_of_junk_on_one_call_stays_within_20_mb(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server.log", f"sqlite:///{tmp_path / 'mem.db'}")
    try:
        trio.run(short_call, server.port)
        before = server.rss_bytes()
        code, sent = trio.run(junk_call, server.port)
        after = server.rss_bytes()
        assert server.alive and code == 1000, code
        assert sent >= JUNK_BYTES
        grown = after - before
        print(f"RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB after {sent / 1e6:.0f} MB of junk")
        assert grown < LIMIT_GROWTH, f"RSS grew by {grown / 1e6:.1f} MB after {sent / 1e6:.0f} MB of junk"
    finally:
        server.stop()
