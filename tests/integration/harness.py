"""A real hypercorn server on a free loopback port, in the test's own nursery."""
from __future__ import annotations

from contextlib import asynccontextmanager
import os
from typing import AsyncIterator, Callable

import trio
from hypercorn.trio import serve

from server.app import AgentApp, create_app, server_config
from server.settings import Settings
from server.demo import free_port
from server.wiring import Wiring


SHUTDOWN_LIMIT_S = 30.0


@asynccontextmanager
async def running_server(
    wiring_factory: Callable[[Settings], Wiring], env: dict[str, str] | None = None
) -> AsyncIterator[tuple[AgentApp, int]]:
    settings = Settings.from_env(env or {})
    app = create_app(settings, wiring_factory, configure_logs=False)
    port = free_port()
    config = server_config("127.0.0.1", port)
    config.errorlog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status))
        try:
            yield app, port
        finally:
            shutdown.set()
            # A server that does not stop is a failure of the test, not a hung suite.
            nursery.cancel_scope.deadline = trio.current_time() + SHUTDOWN_LIMIT_S
    if nursery.cancel_scope.cancelled_caught:
        raise AssertionError(f"the in-process server did not shut down within {SHUTDOWN_LIMIT_S:g} s")


def http(
    method: str, port: int, path: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One blocking HTTP/1.1 request to the loopback server (run it with trio.to_thread)."""
    import http.client
    import urllib.parse

    body = urllib.parse.urlencode(form).encode() if form is not None else None
    hdrs = dict(headers or {})
    if body is not None:
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


async def ahttp(method: str, port: int, path: str, **kw: object) -> tuple[int, dict[str, str], bytes]:
    return await trio.to_thread.run_sync(lambda: http(method, port, path, **kw))  # type: ignore[arg-type]


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@asynccontextmanager
async def server_process(log_path: "os.PathLike[str] | str", env: dict[str, str] | None = None,
                         workers: int = 1) -> AsyncIterator[tuple[int, int]]:
    """`agentlocator serve` as its own process (as in production: Twilio is not in our
    process) on a free loopback port; yields (port, pid); its JSON log goes to ``log_path``.
    ``AGENTLOCATOR_TEST_WIRING`` in ``env`` selects fake providers. ``workers``: `--workers`
    (with 1, the default, the pid is the server itself; more: the supervisor's)."""
    import os
    import signal
    import subprocess
    import sys

    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "GOOGLE_", "OPENAI_"))}
    full_env.update({"AGENT_LANGUAGE": "en-US", "DATABASE_URL": "sqlite:///:memory:", "RECORDINGS_DIR": "off",
                     **(env or {})})
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", str(workers)],
                                cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with trio.fail_after(60):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
                try:
                    status, _, _ = await ahttp("GET", port, "/version")
                    if status == 200:
                        break
                except OSError:
                    pass
                await trio.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await trio.to_thread.run_sync(lambda: proc.wait(timeout=15))
        except subprocess.TimeoutExpired:
            proc.kill()


async def admitted_ids(port: int, ids: "object | None" = None, auth_token: str | None = None,
                       signed_url: str | None = None) -> "object":
    """CallIds whose `start` the server admits: the call's TwiML fetched first, like Twilio
    does, so its customParameters carry the websocket token minted for this CallSid."""
    import dataclasses
    import functools

    from server.caller.call import CallIds
    from server.caller.client import fetch_stream

    ids = ids or CallIds()
    _, params = await trio.to_thread.run_sync(functools.partial(
        fetch_stream, f"http://127.0.0.1:{port}/twiml", ids, auth_token, signed_url))
    return dataclasses.replace(ids, parameters=params)


def start_frames(ids: "object") -> list[str]:
    """`connected` and `start` as Twilio sends them for ``ids`` (see admitted_ids)."""
    from server.caller.call import SimulatedCall

    return SimulatedCall([], ids).start_messages()  # type: ignore[arg-type]
