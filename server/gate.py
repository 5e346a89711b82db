"""The media websocket's door: nothing of a call exists until its `start` has been checked.

After the upgrade (itself signature-checked by the app) the peer has ``START_TIMEOUT_S`` to
send `connected` (optional) and a `start` that carries, in its customParameters, the token
/twiml minted for that CallSid (:mod:`server.calltokens`) and the call parameters it was
minted with. Then: the SIDs have Twilio's format, the parameters their sizes, the CallSid
has not connected before, and fewer than MAX_CALLS calls are up. Anything else closes the
socket with 1008 (policy) — or 1013 (try again later) when full — before the session, the
recorder, the brain or any provider stream is created. The session then gets the `start`
rebuilt from the checked fields only.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

import trio

from telemetry import metrics
from server.calltokens import TOKEN_PARAM, CallTokens
from server.edge import CALL_PARAMS, custom_params_problem, e164, valid_sid
from telemetry.logs import log_event
from server.transport import Transport, TransportClosed
from server.twilio_codec import Connected, Start, TwilioParser

START_TIMEOUT_S = 5.0
MAX_BEFORE_START = 3  # messages before `start` (Twilio sends one: `connected`)
MAX_PENDING = 64  # upgraded sockets still waiting for their `start` (each for at most START_TIMEOUT_S)
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013


@dataclass(frozen=True, slots=True)
class Admitted:
    call_sid: str
    start_text: str  # the `start` as the session will see it


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # no_start | bad_start | bad_token | replay | busy | draining | closed (metric label)
    detail: str
    code: int
    call_sid: str = ""


class CallGate:
    """One per app: the token checker, the calls that are up, and the pending sockets."""

    def __init__(self, tokens: CallTokens, max_calls: int, account_sid: str | None = None,
                 start_timeout_s: float = START_TIMEOUT_S, drain: Any = None) -> None:
        self.tokens = tokens
        self.drain = drain  # server.drain.Drain: while draining, calls answered since are refused
        self.max_calls = max_calls
        self.account_sid = account_sid
        self.start_timeout_s = start_timeout_s
        self.active: set[str] = set()
        self.pending = 0

    @property
    def full(self) -> bool:
        return len(self.active) >= self.max_calls

    def can_upgrade(self) -> bool:
        return not self.full and self.pending < MAX_PENDING

    def judge(self, start: Start) -> Admitted | Refused:
        """Pure check of one `start` (no I/O); on success the CallSid is taken."""
        sid = start.call_sid
        if not valid_sid("CallSid", sid):
            return Refused("bad_start", "callSid is not a Twilio CallSid", CLOSE_POLICY)
        if not valid_sid("StreamSid", start.stream_sid):
            return Refused("bad_start", "streamSid is not a Twilio StreamSid", CLOSE_POLICY, sid)
        if start.account_sid and not valid_sid("AccountSid", start.account_sid):
            return Refused("bad_start", "accountSid is not a Twilio AccountSid", CLOSE_POLICY, sid)
        if self.account_sid and start.account_sid != self.account_sid:
            return Refused("bad_start", "accountSid is not ours", CLOSE_POLICY, sid)
        params = start.custom_parameters
        problem = custom_params_problem(params)
        if problem:
            return Refused("bad_start", problem, CLOSE_POLICY, sid)
        if params.get("CallSid", sid) != sid:
            return Refused("bad_token", "customParameters CallSid is not the stream's callSid", CLOSE_POLICY, sid)
        bound = {k: params[k] for k in CALL_PARAMS if k != "CallSid" and k in params}
        for name in ("From", "To", "ForwardedFrom"):
            if name in bound and e164(bound[name]) != bound[name]:
                return Refused("bad_start", f"{name} is not an E.164 number", CLOSE_POLICY, sid)
        token = params.get(TOKEN_PARAM)
        why = self.tokens.check(token, sid, bound)
        if why is not None:
            return Refused("bad_token", f"websocket token {why}", CLOSE_POLICY, sid)
        if self.drain is not None and self.drain.refuses_token_minted_at(self.tokens.minted_at(token or "")):
            # answered (by another instance) after this one stopped taking calls
            return Refused("draining", "the server is draining: no new calls", CLOSE_TRY_LATER, sid)
        if sid in self.active or not self.tokens.consume(sid, CallTokens.expiry_of(token or "")):
            return Refused("replay", "this CallSid has already connected", CLOSE_POLICY, sid)
        if self.full:
            return Refused("busy", f"{self.max_calls} calls are up (MAX_CALLS)", CLOSE_TRY_LATER, sid)
        self.active.add(sid)
        return Admitted(sid, _start_text(start, {**bound, "CallSid": sid}))

    def release(self, call_sid: str) -> None:
        self.active.discard(call_sid)

    async def admit(self, transport: Transport) -> Admitted | Refused:
        """Read up to the `start` (bounded in time and count) and judge it; a refusal is
        logged, counted and the socket closed with its code."""
        self.pending += 1
        try:
            verdict = await self._read_start(transport)
        finally:
            self.pending -= 1
        if isinstance(verdict, Refused):
            log_event("WS_CLOSE", logging.WARNING, call_sid=verdict.call_sid, t=0, reason=f"refused: {verdict.reason}",
                      detail=verdict.detail, code=verdict.code)
            metrics.ws_disconnects_total.labels(reason=f"refused_{verdict.reason}").inc()
            if verdict.reason != "closed":
                with trio.move_on_after(1.0):
                    await transport.close(verdict.code, verdict.reason)
        return verdict

    async def _read_start(self, transport: Transport) -> Admitted | Refused:
        parser = TwilioParser()
        with trio.move_on_after(self.start_timeout_s):
            for _ in range(MAX_BEFORE_START):
                try:
                    text = await transport.receive()
                except TransportClosed as exc:
                    return Refused("closed", f"peer closed before start ({exc.code})", exc.code)
                event = parser.parse(text)
                if isinstance(event, Start):
                    return self.judge(event)
                if not isinstance(event, Connected):
                    return Refused("no_start", f"expected start, got {type(event).__name__}", CLOSE_POLICY)
            return Refused("no_start", "no start after connected", CLOSE_POLICY)
        return Refused("no_start", f"no start within {self.start_timeout_s:g} s", CLOSE_POLICY)


def _start_text(start: Start, params: dict[str, str]) -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": start.stream_sid,
        "start": {
            "accountSid": start.account_sid, "callSid": start.call_sid, "streamSid": start.stream_sid,
            "tracks": ["inbound"], "customParameters": params,
            "mediaFormat": {"encoding": start.encoding, "sampleRate": start.sample_rate, "channels": start.channels},
        },
    })


class ReplayTransport:
    """The websocket with the checked `start` put back in front (the session reads it first)."""

    def __init__(self, inner: Transport, first: list[str]) -> None:
        self._inner = inner
        self._first = list(first)
        for name in ("send_nowait", "drain"):  # the raw media socket's extras (server.pacer uses them)
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))
        if hasattr(inner, "receive_in_tick"):  # and the session's (once what was put back is read)
            self.receive_in_tick = self._receive_in_tick
            self.stamps_arrivals = bool(getattr(inner, "stamps_arrivals", False))

    async def _receive_in_tick(self, handle: Callable[[str, float, bool], int], mode: int,
                               plan: Callable[[], tuple[int, float]] | None = None) -> None:
        if not self._first:
            await self._inner.receive_in_tick(handle, mode, plan)  # type: ignore[attr-defined]

    async def receive(self) -> str:
        if self._first:
            return self._first.pop(0)
        return await self._inner.receive()

    async def send(self, text: str) -> None:
        await self._inner.send(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)
