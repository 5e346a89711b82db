"""The corpus over REAL sockets, in REAL time: the same caller, the same audio, the same judge.

A scenario's caller line (:class:`~tests.corpus.line.CallerLine`, a TwilioEmulator whose
``transport`` is an in-memory pair) is bridged to a real websocket client (trio-websocket)
connected to a real server (hypercorn + the Quart-Trio app on a free loopback port, in the
caller's nursery): every frame the emulator sends is relayed to the socket, every frame the
server sends is fed back into the emulator. The server's wiring holds the corpus's own
instruments (the oracle ASR, the agent voice, the spied RuleBrain), so a run gives the same
:class:`~tests.corpus.harness.Record` as the virtual-time harness, and the judge reads it
unchanged. The clock is the wall clock (trio's default), not a MockClock.

The only difference in the instruments: :class:`RealTimeAgentVoice` renders a text it has
not rendered before in a worker thread (a real TTS takes time too) instead of blocking the
event loop, which in real time would stall the server and the caller's line together.
"""
from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import AsyncIterator

import trio
import trio_websocket

from telemetry import logs
from leads.fields import sid_for
from server.session import CallDeps, CallResult, run_call
from server.settings import Settings
from server.transport import TransportClosed
from server.wiring import Wiring

from tests.integration.harness import running_server
from tests.server.fakes import RecordingRecorder
from .agent import _RENDERS, AgentVoice, SpyRuleBrain, render_agent
from .caller import CallerScript, Scenario
from .harness import CALL_NOW, Record, make_record
from .line import CallerLine
from .oracle_asr import OracleRecognizer
from .voices import prerender

WS_PATH = "/ws/twilio-media"


class RealTimeAgentVoice(AgentVoice):
    """AgentVoice whose first render of a text runs in a worker thread (cached afterwards)."""

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if (self.kind, self.language, text) not in _RENDERS:
            await trio.to_thread.run_sync(render_agent, text, self.language, self.kind)
        async for chunk in super().synthesize(text):
            yield chunk


async def bridge(line: CallerLine, ws: trio_websocket.WebSocketConnection) -> None:
    """Relay the emulator's frames to the socket and the socket's frames into the emulator,
    until the server closes the socket (then the emulator sees its transport closed, with the
    server's close code, exactly as in memory) or the emulator drops the link."""
    emulator_side = line.transport  # the end the session would hold in memory

    async with trio.open_nursery() as nursery:

        async def up() -> None:  # caller -> server
            try:
                while True:
                    text = await emulator_side.receive()
                    await ws.send_message(text)
            except TransportClosed as exc:  # the emulator dropped the line
                await ws.aclose(exc.code if exc.code != 1006 else 1001, exc.reason)
            except trio_websocket.ConnectionClosed:
                pass

        async def down() -> None:  # server -> caller
            code, reason = 1006, "dropped"
            try:
                while True:
                    message = await ws.get_message()
                    await emulator_side.send(message if isinstance(message, str) else message.decode())
            except trio_websocket.ConnectionClosed as exc:
                if exc.reason is not None:
                    code, reason = exc.reason.code, exc.reason.reason or ""
            except TransportClosed:
                pass
            await emulator_side.close(code, reason)
            nursery.cancel_scope.cancel()

        nursery.start_soon(up)
        nursery.start_soon(down)


@dataclass
class SocketCall:
    """One scenario's instruments, shared by the caller's side and the server's wiring."""

    sc: Scenario
    line: CallerLine
    oracle: OracleRecognizer
    voice: AgentVoice
    recorder: RecordingRecorder = field(default_factory=RecordingRecorder)
    brains: list[SpyRuleBrain] = field(default_factory=list)
    result: CallResult | None = None
    ended: trio.Event = field(default_factory=trio.Event)

    def new_brain(self, language: str, phone: str, now: dt.datetime) -> SpyRuleBrain:
        brain = SpyRuleBrain(language, phone, now)
        self.brains.append(brain)
        return brain

    def wiring(self, settings: Settings) -> Wiring:
        deps = CallDeps(
            config=settings.timing,
            new_recognizer=lambda language: self.oracle,
            synthesizer=self.voice,
            new_brain=self.new_brain,
            recorder=self.recorder,
            language=settings.agent_language,
            wall_clock=lambda: CALL_NOW.astimezone(dt.timezone.utc),
        )

        async def recording_run_call(transport, deps):  # type: ignore[no-untyped-def]
            try:
                self.result = await run_call(transport, deps)
                return self.result
            finally:
                self.ended.set()

        return Wiring(run_call=recording_run_call, call_deps=deps,
                      providers={"asr": self.oracle.name, "tts": self.voice.name, "brain": "rules (spied)"},
                      recorder=self.recorder)


@dataclass
class SocketRun:
    record: Record
    wall_s: float  # the call on the wall clock, server start to teardown
    port: int  # the server's loopback port (closed again when the run returns)


ACCOUNT_SID = "AC" + "0" * 32


async def admit_line(line: "CallerLine", port: int) -> None:
    """Fetch the call's TwiML like Twilio, so the line's `start` carries its websocket token."""
    import functools

    from server.caller.call import CallIds
    from server.caller.client import fetch_stream

    ids = CallIds(call_sid=line.call_sid, stream_sid=line.stream_sid, account_sid=line.account_sid,
                  from_number=line.from_number)
    _, params = await trio.to_thread.run_sync(functools.partial(fetch_stream, f"http://127.0.0.1:{port}/twiml", ids))
    line.custom_parameters = params


def new_socket_call(sc: Scenario) -> SocketCall:
    line = CallerLine(snr_db=sc.snr_db, echo=sc.echo, bursts=sc.bursts,  # type: ignore[arg-type]
                      call_sid=sid_for("CA", sc.name), stream_sid=sid_for("MZ", sc.name), account_sid=ACCOUNT_SID)
    oracle = OracleRecognizer(lambda: line.placed, line.now, latency_s=sc.asr_latency_s)
    return SocketCall(sc, line, oracle, RealTimeAgentVoice(sc.language, sc.agent))


async def run_scenario_over_socket(sc: Scenario, limit_s: float = 60.0) -> SocketRun:
    """One scenario -> one real-time call over a real websocket to a real server -> a Record.

    Everything (the server, the socket, the caller's line) lives in this task's nursery and
    is gone when it returns; ``limit_s`` of wall time bounds the whole call."""
    clips = prerender(sc.voices)
    call = new_socket_call(sc)
    line = call.line
    script = CallerScript(sc.steps, clips, call.oracle)
    started = trio.current_time()
    ports: list[int] = []
    with trio.fail_after(limit_s):
        async with running_server(call.wiring, {"AGENT_LANGUAGE": sc.language}) as (_, port):
            ports.append(port)
            url = f"ws://127.0.0.1:{port}{WS_PATH}"
            await admit_line(line, port)
            async with trio_websocket.open_websocket_url(url, subprotocols=["audio.twilio.com"]) as ws:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(bridge, line, ws)
                    nursery.start_soon(line.run, script)
                    await call.ended.wait()  # the server's session is over
                    with trio.move_on_after(1.0):  # let the line see the close
                        await line.wait_until(lambda: line.closed_at is not None)
                    nursery.cancel_scope.cancel()
    record = make_record(sc, line, script, call.voice, call.brains, call.oracle, call.result, [])
    return SocketRun(record, trio.current_time() - started, ports[0])


async def run_scenarios_over_sockets(
    scenarios: list[Scenario], limit_s: float = 60.0
) -> dict[str, SocketRun]:
    """Several scenarios at once, each its own server and socket (one call per server, so the
    wiring knows whose instruments a call uses); the server log lines go to each Record by
    call_sid."""
    stream = io.StringIO()
    logs.configure("INFO", stream)
    runs: dict[str, SocketRun] = {}

    async def one(sc: Scenario) -> None:
        runs[sc.name] = await run_scenario_over_socket(sc, limit_s)

    async with trio.open_nursery() as nursery:
        for sc in scenarios:
            nursery.start_soon(one, sc)
    lines = [json.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")]
    for name, run in runs.items():
        run.record.log_lines = [x for x in lines if x.get("call_sid") == sid_for("CA", name)]
    return runs

