"""Shared pieces of the security tests: a real server with fake providers and a spy recorder,
and a websocket peer that speaks (or misspeaks) Twilio's protocol."""
from __future__ import annotations

import dataclasses
import functools
import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import trio
import trio_websocket

from server.caller.call import CallIds
from server.caller.client import fetch_stream
from tests.integration.fakes import FakeWorld
from tests.integration.harness import running_server
from tests.server.fakes import RecordingRecorder

WS_PATH = "/ws/twilio-media"
MAX_WS_MESSAGE = 64 * 1024  # server.app.MAX_WS_MESSAGE (checked in test_limits)
MAX_BEFORE_START = 3  # server.gate.MAX_BEFORE_START (checked in test_limits)


def new_world(**kw: Any) -> FakeWorld:
    return FakeWorld(["okay"] * 50, turns=50, recorder=RecordingRecorder(), **kw)


@asynccontextmanager
async def world_server(env: dict[str, str] | None = None, world: FakeWorld | None = None
                       ) -> AsyncIterator[tuple[Any, int, FakeWorld]]:
    world = world or new_world()
    async with running_server(world.wiring, {"AGENT_LANGUAGE": "en-US", **(env or {})}) as (app, port):
        yield app, port, world


def nothing_of_a_call(world: FakeWorld) -> bool:
    """No session ran: no recognizer, no brain, no recorder row, no result."""
    return not world.recognizers and not world.brains and not world.results \
        and not world.recorder.events and not world.recorder.ended  # type: ignore[attr-defined]


async def twiml_params(port: int, ids: CallIds, **kw: Any) -> dict[str, str]:
    _, params = await trio.to_thread.run_sync(functools.partial(
        fetch_stream, f"http://127.0.0.1:{port}/twiml", ids, **kw))
    return params


async def admitted(port: int, ids: CallIds | None = None, **kw: Any) -> CallIds:
    ids = ids or CallIds()
    return dataclasses.replace(ids, parameters=await twiml_params(port, ids, **kw))


def start_message(ids: CallIds, params: dict[str, str] | None = None, **start_fields: Any) -> str:
    start = {
        "accountSid": ids.account_sid, "callSid": ids.call_sid, "streamSid": ids.stream_sid,
        "tracks": ["inbound"], "customParameters": ids.parameters if params is None else params,
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    start.update(start_fields)
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": ids.stream_sid, "start": start})


CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


async def server_close(ws: trio_websocket.WebSocketConnection, timeout_s: float = 8.0) -> tuple[int | None, list[str]]:
    """Read until the server closes; (close code, the frames it sent before)."""
    got: list[str] = []
    with trio.fail_after(timeout_s):
        try:
            while True:
                msg = await ws.get_message()
                got.append(msg if isinstance(msg, str) else msg.decode("latin1"))
        except trio_websocket.ConnectionClosed as exc:
            return getattr(exc.reason, "code", None), got


async def try_start(port: int, frames: list[str | bytes], headers: list[tuple[str, str]] | None = None,
                    timeout_s: float = 8.0) -> tuple[int | None, list[str]]:
    """Open the media websocket, send ``frames`` and return how the server closed it."""
    url = f"ws://127.0.0.1:{port}{WS_PATH}"
    async with trio_websocket.open_websocket_url(url, extra_headers=headers or []) as ws:
        for frame in frames:
            try:
                await ws.send_message(frame)
            except trio_websocket.ConnectionClosed as exc:
                return getattr(exc.reason, "code", None), []
        return await server_close(ws, timeout_s)


async def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.01)


@asynccontextmanager
async def dashboard_server(db_url: str, env: dict[str, str] | None = None
                           ) -> AsyncIterator[tuple[Any, int, FakeWorld]]:
    """The app with the real store, the dashboard and inflow blueprints (and fake speech / brain)."""
    from leads.store import open_store
    from server.dashboard import dashboard_bp
    from server.inflow import inflow_bp
    from server.whatsapp import whatsapp_bp

    world = new_world()

    def factory(settings: Any) -> Any:
        wiring = world.wiring(settings)
        wiring.recorder = open_store(db_url)
        wiring.blueprints = [dashboard_bp, inflow_bp, whatsapp_bp]
        return wiring

    async with running_server(factory, {"AGENT_LANGUAGE": "en-US", **(env or {})}) as (app, port):
        yield app, port, world


def raw_request(port: int, head: str, body: bytes = b"", timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request written by hand (repeated headers, odd Host values...): ``head``
    is the request line and header lines, without the blank line. Blocking."""
    import socket

    head = head.rstrip("\n") + f"\nContent-Length: {len(body)}\nConnection: close\n\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin1") + body)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:  # hypercorn may keep the socket open: stop at the body's end
                top, _, rest = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in top.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
    head_part, _, rest = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, rest


async def araw(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    return await trio.to_thread.run_sync(lambda: raw_request(port, head, body))


class ServerProcess:
    """`agentlocator serve` as its own process on a free loopback port, with fake providers,
    the real store and the dashboard (tests.integration.fakes:dashboard_wiring). Sync, so
    hypothesis tests and RSS measurements can use it."""

    def __init__(self, log_path: Any, db_url: str, env: dict[str, str] | None = None) -> None:
        import os
        import subprocess
        import sys
        import time
        import urllib.request

        from server.demo import free_port
        from tests.integration.harness import ROOT

        self.port = free_port()
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TWILIO_", "GOOGLE_", "OPENAI_", "AGENTLOCATOR_", "DASHBOARD_", "METRICS_"))}
        full_env.update({"AGENT_LANGUAGE": "en-US", "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING",
                         "AGENTLOCATOR_TEST_WIRING": "tests.integration.fakes:dashboard_wiring", **(env or {})})
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            # one process: its RSS is the server's, and a crash is seen (no supervisor restarts it)
            [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/version", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not come up in 60 s")
            time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
