"""Finding 1: the media websocket could be opened by anyone who had seen one upgrade
signature (it covers only the fixed stream URL), with made-up CallSids and numbers; a
reused CallSid overwrote a call's row. Now /twiml mints a per-call token, `start` must bring
it back with the matching CallSid and parameters, once, before anything of a call exists."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
import xml.etree.ElementTree as ET

import pytest
import trio
import trio_websocket

from server.caller.call import CallIds, new_sid
from server.security import SignatureChecker
from tests.integration.harness import ahttp

from .support import (
    CONNECTED, WS_PATH, admitted, nothing_of_a_call, server_close, start_message, try_start, wait_for,
    world_server,
)

AUTH = "auth-token-for-tests"
PUBLIC = "https://agent.example.com"
SIGNED_ENV = {"TWILIO_AUTH_TOKEN": AUTH, "PUBLIC_BASE_URL": PUBLIC}


def upgrade_signature(url: str = f"wss://agent.example.com{WS_PATH}") -> list[tuple[str, str]]:
    return [("X-Twilio-Signature", SignatureChecker(AUTH).sign(url, {}))]


async def test_a_start_without_the_calls_token_is_closed_before_anything_exists() -> None:
    """The attack of the issue: a valid upgrade signature replayed, a made-up call in `start`."""
    async with world_server(SIGNED_ENV) as (_, port, world):
        ids = CallIds()
        made_up = {"From": "+972509999999", "To": "+97231234567", "CallSid": ids.call_sid}
        code, frames = await try_start(port, [CONNECTED, start_message(ids, made_up)], upgrade_signature())
        assert code == 1008 and frames == []
        assert nothing_of_a_call(world)


@pytest.mark.parametrize("tamper", ["forged", "other_call", "other_from", "no_callsid_match", "expired"])
async def test_a_token_only_opens_its_own_call(tamper: str) -> None:
    async with world_server() as (app, port, world):
        ids = await admitted(port)
        params = dict(ids.parameters)
        start_ids = ids
        if tamper == "forged":
            expires, nonce, mac = params["token"].split(".")
            params["token"] = f"{expires}.{nonce}.{mac[::-1]}"
        elif tamper == "other_call":  # a real token, presented for another CallSid
            start_ids = dataclasses.replace(ids, call_sid=new_sid("CA"))
            params["CallSid"] = start_ids.call_sid
        elif tamper == "other_from":  # the numbers are bound too: no swapping in a victim's number
            params["From"] = "+972521111111"
        elif tamper == "no_callsid_match":
            params["CallSid"] = new_sid("CA")
        elif tamper == "expired":
            app.gate.tokens._clock = lambda: time.time() + 3600
        code, _ = await try_start(port, [CONNECTED, start_message(start_ids, params)])
        assert code == 1008, tamper
        assert nothing_of_a_call(world)


async def test_replay_the_same_start_twice() -> None:
    """Single use: the second connection with the same CallSid and token is refused while the
    first call goes on untouched (its row is not overwritten)."""
    async with world_server() as (_, port, world):
        ids = await admitted(port)
        url = f"ws://127.0.0.1:{port}{WS_PATH}"
        async with trio_websocket.open_websocket_url(url) as first:
            await first.send_message(CONNECTED)
            await first.send_message(start_message(ids))
            await wait_for(lambda: world.brains)
            code, _ = await try_start(port, [CONNECTED, start_message(ids)])
            assert code == 1008
            assert len(world.brains) == 1 and len(world.recognizers) == 1
            started = [e for e in world.recorder.events if e[0] == "call_started"]
            assert [e[1].call_sid for e in started] == [ids.call_sid]
            await first.send_message(json.dumps({"event": "stop", "streamSid": ids.stream_sid,
                                                 "stop": {"callSid": ids.call_sid}}))
            code, _ = await server_close(first)
        assert code == 1000
        # and after the call: still refused (the token was for one connection)
        code, _ = await try_start(port, [CONNECTED, start_message(ids)])
        assert code == 1008
        await wait_for(lambda: world.results)
        assert len(world.results) == 1 and world.results[0].close_reason == "twilio_stop"


async def test_a_wrong_upgrade_signature_is_refused_not_only_a_missing_one() -> None:
    async with world_server(SIGNED_ENV) as (_, port, world):
        url = f"ws://127.0.0.1:{port}{WS_PATH}"
        good = upgrade_signature()[0][1]
        for headers in ([], [("X-Twilio-Signature", "")], [("X-Twilio-Signature", good[:-4] + "AAA=")],
                        [("X-Twilio-Signature", "x" * 28)],
                        upgrade_signature("wss://evil.example.net/ws/twilio-media"),
                        [("X-Twilio-Signature", SignatureChecker("another-token").sign(
                            f"wss://agent.example.com{WS_PATH}", {}))]):
            with pytest.raises(trio_websocket.ConnectionRejected) as exc:
                async with trio_websocket.open_websocket_url(url, extra_headers=headers):
                    pass
            assert exc.value.status_code == 403, headers
        ids = await admitted(port, auth_token=AUTH, signed_url=f"{PUBLIC}/twiml")
        async with trio_websocket.open_websocket_url(url, extra_headers=upgrade_signature()) as ws:
            await ws.send_message(CONNECTED)
            await ws.send_message(start_message(ids))
            await wait_for(lambda: world.brains)
        assert len(world.brains) == 1


async def test_twiml_carries_the_token_and_refuses_a_made_up_callsid() -> None:
    async with world_server() as (_, port, world):
        for sid in ("", "CA123", "CA" + "g" * 32, "XX" + "0" * 32, "CA" + "0" * 33):
            status, _, _ = await ahttp("POST", port, "/twiml", form={"CallSid": sid, "From": "+972501234567"})
            assert status == 400, sid
        ids = CallIds()
        status, _, body = await ahttp("POST", port, "/twiml", form=ids.webhook_params())
        assert status == 200
        params = {p.get("name"): p.get("value") for p in ET.fromstring(body).iter("Parameter")}
        assert params["CallSid"] == ids.call_sid and params["token"].count(".") == 2


async def test_an_outbound_call_gets_the_same_token() -> None:
    """A call we place through the REST API points Twilio at /twiml (Direction outbound-api),
    so it gets its token the same way; the lead is the called party."""
    async with world_server() as (_, port, world):
        ids = CallIds(from_number="+97231234567", to_number="+972547654321", direction="outbound-api")
        ids = await admitted(port, ids)
        assert ids.parameters["Direction"] == "outbound-api" and ids.parameters["token"]
        url = f"ws://127.0.0.1:{port}{WS_PATH}"
        async with trio_websocket.open_websocket_url(url) as ws:
            await ws.send_message(CONNECTED)
            await ws.send_message(start_message(ids))
            await wait_for(lambda: world.recorder.events)
        started = [e[1] for e in world.recorder.events if e[0] == "call_started"]
        assert started[0].call_sid == ids.call_sid
        # the Direction is bound into the token: it cannot be flipped to make From the lead
        ids2 = await admitted(port, dataclasses.replace(ids, call_sid=new_sid("CA")))
        flipped = {**ids2.parameters, "Direction": "inbound"}
        code, _ = await try_start(port, [CONNECTED, start_message(ids2, flipped)])
        assert code == 1008


def test_tokens_unit() -> None:
    from server.calltokens import CallTokens, server_secret

    now = [1000.0]
    master, source = server_secret(None, "twilio-token")
    assert source == "derived from TWILIO_AUTH_TOKEN"
    assert server_secret("s" * 32, "twilio-token")[0] != master
    assert server_secret(None, None)[0] != server_secret(None, None)[0]  # random per process
    tokens = CallTokens(master, ttl_s=120, capacity=3, clock=lambda: now[0])
    sid = "CA" + "a" * 32
    tok = tokens.mint(sid, {"From": "+972501234567"})
    assert tokens.check(tok, sid, {"From": "+972501234567"}) is None
    assert tokens.check(tok, sid, {"From": "+972501234568"}) == "forged"
    assert tokens.check(tok, "CA" + "b" * 32, {"From": "+972501234567"}) == "forged"
    assert tokens.check(None, sid, {}) == "missing" and tokens.check("x" * 500, sid, {}) == "malformed"
    assert CallTokens(server_secret(None, "other")[0]).check(tok, sid, {"From": "+972501234567"}) == "forged"
    now[0] += 121
    assert tokens.check(tok, sid, {"From": "+972501234567"}) == "expired"
    # single use, bounded memory: entries live until their token expires; a full table refuses
    assert tokens.consume(sid, now[0] + 120) and not tokens.consume(sid, now[0] + 120)
    assert tokens.consume("CA" + "1" * 32) and tokens.consume("CA" + "2" * 32)
    assert not tokens.consume("CA" + "3" * 32)  # full of live entries: fail closed
    now[0] += 200
    assert tokens.consume("CA" + "3" * 32) and len(tokens) == 1  # expired ones were pruned


async def test_no_start_at_all_is_closed_within_five_seconds() -> None:
    from server.gate import START_TIMEOUT_S
    from server.session import CallDeps

    assert START_TIMEOUT_S <= 5.0
    assert CallDeps.__dataclass_fields__["start_timeout_s"].default <= 5.0
    async with world_server() as (app, port, world):
        app.gate.start_timeout_s = 0.3  # the same code path, faster
        started = trio.current_time()
        code, _ = await try_start(port, [CONNECTED])
        assert code == 1008 and trio.current_time() - started < 2.0
        code, _ = await try_start(port, [CONNECTED, CONNECTED, CONNECTED, CONNECTED])
        assert code == 1008
        assert nothing_of_a_call(world)


def test_tokens_single_use_is_shared_between_workers(tmp_path: Path) -> None:
    """`serve --workers N`: every worker's CallTokens shares one used-CallSid record (a file
    per CallSid, O_EXCL): a token used on one worker is refused on another; expired entries
    are replaced and pruned; a record full of live entries fails closed."""
    from server.calltokens import PRUNE_SLACK_S, CallTokens

    now = [1000.0]
    master = b"m" * 32
    shared = tmp_path / "used"
    a = CallTokens(master, ttl_s=120, capacity=3, clock=lambda: now[0], shared_dir=shared)
    b = CallTokens(master, ttl_s=120, capacity=3, clock=lambda: now[0], shared_dir=shared)
    sid = "CA" + "a" * 32
    tok = a.mint(sid, {})
    assert b.check(tok, sid, {}) is None  # one secret: minted on a, good on b
    assert a.consume(sid, CallTokens.expiry_of(tok))
    assert not b.consume(sid, CallTokens.expiry_of(tok)) and not a.consume(sid, CallTokens.expiry_of(tok))
    assert (shared / sid).stat().st_mode & 0o777 == 0o600 and shared.stat().st_mode & 0o777 == 0o700
    now[0] += 121  # that token has expired: the CallSid may connect once more with a new one
    assert b.consume(sid, now[0] + 120) and not a.consume(sid, now[0] + 120)
    assert a.consume("CA" + "1" * 32) and b.consume("CA" + "2" * 32)
    assert not a.consume("CA" + "3" * 32)  # full of live entries (every worker's): fail closed
    late = CallTokens(master, ttl_s=120, capacity=3, clock=lambda: now[0], shared_dir=shared)
    assert not late.consume("CA" + "3" * 32)
    now[0] += 121 + PRUNE_SLACK_S
    assert a.consume("CA" + "3" * 32) and len(a) == len(b) == 1  # expired ones were pruned


def _take_in_process(shared: str, sid: str, barrier: "object", results: "object") -> None:
    from server.calltokens import CallTokens

    tokens = CallTokens(b"m" * 32, shared_dir=shared)
    barrier.wait()  # type: ignore[attr-defined]
    results.put(tokens.consume(sid))  # type: ignore[attr-defined]


def test_tokens_shared_record_has_one_winner_across_processes(tmp_path: Path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_take_in_process, args=(str(tmp_path / "used"), "CA" + "f" * 32, barrier, results))
             for _ in range(6)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sorted(outcomes) == [False] * 5 + [True]
