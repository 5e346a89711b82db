"""Speed to lead, end to end with the real server: a lead posted to /api/leads/intake becomes
a dial job, the dialer's calls.create reaches a fake Twilio REST server, which places a
simulated call into our /twiml as ``outbound-api``; the real session, the rule brain and the
store run it; Twilio's status / AMD callbacks (signed) settle the job.

Fake providers only where the audio is: a scripted recognizer (the lead's words) and a tone
synthesizer (what the agent said is recorded as text).
"""
from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import wave
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from dialog.rules import RuleBrain
from server.settings import Settings
from server.wiring import Wiring

from .fakes import ScriptedRecognizer, ToneSynthesizer
from .harness import ahttp, running_server
from .twilio_calls import WAIT, FakeTwilioCalls, PreparedHangup, play, post_signed, say
from .twilio_calls import TOKEN, final_form

LEAD = "+972501234567"
FORM = {"phone": "050-123-4567", "name": "דנה כהן", "area": "רמת גן", "property_type": "דירה", "rooms": "4",
        "budget_ils": "2,500,000", "deal": "buy", "timeframe": "תוך חצי שנה", "source": "web_form"}


class World:
    """The server's wiring: the production store, dialer and blueprints (server.wiring's
    build_recorder), the rule brain, a scripted recognizer and a tone synthesizer."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.synth = ToneSynthesizer()
        self.results: list[Any] = []
        self.store: Any = None

    def wiring(self, settings: Settings) -> Wiring:
        from leads.dialer import outbound_lookup
        from server.session import CallDeps, run_call
        from server.wiring import build_recorder

        recorder, background, blueprints = build_recorder(settings, [])
        self.store = recorder.store

        async def recording_run_call(transport: Any, deps: Any) -> Any:
            result = await run_call(transport, deps)
            self.results.append(result)
            return result

        deps = CallDeps(config=settings.timing, new_recognizer=lambda lang: ScriptedRecognizer(self.lines),
                        synthesizer=self.synth, new_brain=RuleBrain, recorder=recorder,
                        language=settings.agent_language, outbound_context=outbound_lookup(recorder.store))
        return Wiring(run_call=recording_run_call, call_deps=deps,
                      providers={"asr": "fake-asr", "tts": "fake-tts", "brain": "rules"}, recorder=recorder,
                      background=background, blueprints=blueprints)


def env(tmp_path: Path, fake: FakeTwilioCalls, **extra: str) -> dict[str, str]:
    return {"AGENT_LANGUAGE": "he-IL", "DATABASE_URL": f"sqlite:///{tmp_path / 'leads.db'}",
            "INTAKE_TOKEN": "intake-secret-token", "STORE_JOURNAL_DIR": str(tmp_path / "journal"),
            **fake.env(), **extra}


def post_intake(port: int, body: dict[str, Any], key: str | None = None) -> tuple[int, dict[str, Any]]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer intake-secret-token"}
    if key:
        headers["Idempotency-Key"] = key
    conn.request("POST", "/api/leads/intake", body=json.dumps(body, ensure_ascii=False).encode(), headers=headers)
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"{}")


async def lead(port: int) -> dict[str, Any]:
    status, _, body = await ahttp("GET", port, f"/api/leads/{LEAD}")
    assert status == 200, body
    return json.loads(body)


async def until(predicate: Any, timeout_s: float = 30.0) -> None:
    with trio.fail_after(timeout_s):
        while not await predicate():
            await trio.sleep(0.05)


def steps_answering(*lines: str) -> list[Any]:
    out: list[Any] = [WAIT]
    for i, line in enumerate(lines):
        out += [say(900, line), WAIT]
    return out + [PreparedHangup()]


async def test_intake_to_call_to_meeting(tmp_path: Path) -> None:
    """A complete web form: the dialer calls at once; the agent opens with the lead's name and
    request, asks nothing it knows, offers windows, books, and the job is done."""
    fake = FakeTwilioCalls()
    words = ["כן, בטח", "הראשון", "כן", "לא, תודה"]
    world = World(words)
    try:
        async with running_server(world.wiring, env(tmp_path, fake)) as (_, port):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play, fake, port, lambda placed: steps_answering(*words))
                posted = time.monotonic()
                status, body = await trio.to_thread.run_sync(post_intake, port, FORM, "form-1")
                assert status == 201 and body["dial"]["status"] == "queued", body
                await until(lambda: _true(bool(fake.placed)), 5)
                create_s = fake.placed[0].received - posted

                async def booked() -> bool:
                    detail = await lead(port)
                    return detail["dial_jobs"][0]["state"] == "done" and detail["lead"]["status"] == "meeting_booked"

                await until(booked, 60)
                nursery.cancel_scope.cancel()
            detail = await lead(port)
    finally:
        fake.close()
    assert create_s < 2.0, f"intake -> calls.create took {create_s:.3f} s"
    placed = fake.placed[0]
    assert placed.params["To"] == LEAD and placed.params["From"] == "+97233334444"
    assert placed.params["Url"] == "https://agent.example.com/twiml"
    assert placed.params["MachineDetection"] == "DetectMessageEnd" and placed.params["AsyncAmd"] == "true"
    assert placed.statuses == [204]
    # The agent knew whom it called, and never asked for what the form said.
    opening = world.synth.spoken[0]
    assert opening == "היי דנה, מדברת נועה מ-AgentLocator, השארת פרטים על דירת 4 חדרים ברמת גן — זה זמן טוב?"
    said = " ".join(world.synth.spoken)
    for question in ("באיזה אזור", "איזה סוג נכס", "מה התקציב", "תוך כמה זמן", "איך קוראים לך", "לאיזה מספר"):
        assert question not in said, (question, world.synth.spoken)
    assert "אפשר להיפגש" in said and "קבענו" in said
    assert placed.outcome.call.errors == []
    [job] = detail["dial_jobs"]
    assert (job["reason"], job["attempts"], job["outcome"], job["call_sid"]) == ("intake", 1, "completed", placed.sid)
    assert detail["lead"]["source"] == "web_form" and detail["lead"]["meeting_at"]
    assert [c["call_sid"] for c in detail["calls"]] == [placed.sid]
    assert detail["intake"][0]["source"] == "web_form"


async def test_not_a_good_time_becomes_a_callback(tmp_path: Path) -> None:
    fake = FakeTwilioCalls()
    world = World(["לא זמן טוב, תתקשרי מחר בעשר"])
    try:
        async with running_server(world.wiring, env(tmp_path, fake)) as (_, port):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play, fake, port, lambda placed: steps_answering("לא זמן טוב"))
                status, body = await trio.to_thread.run_sync(post_intake, port, {"phone": LEAD, "name": "דנה",
                                                                                  "source": "facebook"})
                assert status == 201, body

                async def two_jobs() -> bool:
                    jobs = (await lead(port))["dial_jobs"]
                    return len(jobs) == 2 and jobs[0]["state"] == "done"

                await until(two_jobs, 40)
                nursery.cancel_scope.cancel()
            detail = await lead(port)
    finally:
        fake.close()
    first, callback = detail["dial_jobs"]
    assert callback["reason"] == "callback" and callback["state"] == "pending"
    due = dt.datetime.fromisoformat(callback["due_at"])
    assert (due.hour, due.minute) == (10, 0) and due.date() > dt.date.today() - dt.timedelta(days=1)
    assert "בסדר גמור, נחזור מחר בעשר." in world.synth.spoken  # said sentence by sentence
    assert len(fake.placed) == 1  # not called again now


@pytest.mark.parametrize("scenario", ["no-answer", "busy"])
async def test_unanswered_is_retried_on_the_schedule(tmp_path: Path, scenario: str) -> None:
    fake = FakeTwilioCalls({LEAD: scenario})
    world = World([])
    try:
        async with running_server(world.wiring, env(tmp_path, fake, DIAL_RETRIES="1s, 1s, 1h")) as (_, port):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play, fake, port, lambda placed: [])
                status, _ = await trio.to_thread.run_sync(post_intake, port, {"phone": LEAD, "source": "api"})
                assert status == 201

                async def third_failed() -> bool:
                    job = (await lead(port))["dial_jobs"][0]
                    return job["attempts"] == 3 and job["state"] == "pending" and job["outcome"] == scenario

                await until(third_failed, 30)
                nursery.cancel_scope.cancel()
            job = (await lead(port))["dial_jobs"][0]
    finally:
        fake.close()
    assert len(fake.placed) == 3 and all(p.statuses == [204] for p in fake.placed)
    assert [h["outcome"] for h in job["history"]] == [scenario] * 3
    due = dt.datetime.fromisoformat(job["due_at"])
    assert dt.timedelta(minutes=55) < due - dt.datetime.now(dt.timezone.utc) < dt.timedelta(minutes=61)
    assert world.results == []  # nobody answered: no session ever started


async def test_max_outbound_calls_holds(tmp_path: Path) -> None:
    """MAX_OUTBOUND_CALLS=1: the second lead is called only once the first call has ended."""
    other = "+972521234567"
    fake = FakeTwilioCalls({LEAD: "busy", other: "busy"})
    world = World([])
    try:
        async with running_server(world.wiring, env(tmp_path, fake, MAX_OUTBOUND_CALLS="1",
                                                    DIAL_RETRIES="1h")) as (_, port):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play, fake, port, lambda placed: [])
                for phone in (LEAD, other):
                    status, _ = await trio.to_thread.run_sync(post_intake, port, {"phone": phone, "source": "api"})
                    assert status == 201
                await until(lambda: _true(len(fake.placed) == 2 and all(p.statuses for p in fake.placed)), 20)
                nursery.cancel_scope.cancel()
    finally:
        fake.close()
    first, second = fake.placed
    assert first.ended is not None and second.received > first.ended


async def test_answering_machine_hears_the_voicemail_line(tmp_path: Path) -> None:
    fake = FakeTwilioCalls({LEAD: "machine"})
    world = World([])
    try:
        async with running_server(world.wiring, env(tmp_path, fake)) as (_, port):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play, fake, port, lambda placed: [])
                status, _ = await trio.to_thread.run_sync(post_intake, port, {"phone": LEAD, "name": "דנה כהן",
                                                                              "source": "web_form"})
                assert status == 201

                async def settled() -> bool:
                    job = (await lead(port))["dial_jobs"][0]
                    return job["state"] == "pending" and job["outcome"] == "machine"

                await until(settled, 30)
                nursery.cancel_scope.cancel()
            job = (await lead(port))["dial_jobs"][0]
            [placed] = fake.placed
            [update] = placed.updates
            # What Twilio plays: the line in the agent's own voice, fetched from us.
            url = re.search(r"<Play>([^<]+)</Play><Hangup /></Response>$", update["Twiml"]).group(1)
            url = html.unescape(url)
            assert url.startswith("https://agent.example.com/dial/voicemail.wav?job=")
            status, headers, audio = await ahttp("GET", port, url.removeprefix("https://agent.example.com"))
            forged, _, _ = await ahttp("GET", port, url.removeprefix("https://agent.example.com")[:-4] + "0000")
    finally:
        fake.close()
    assert status == 200 and headers["content-type"] == "audio/wav" and forged == 403
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2) and wav.getnframes() > 8000
    assert world.synth.spoken[-1].startswith("היי דנה, כאן נועה מ-AgentLocator")
    assert placed.statuses == [204, 204]  # the AMD verdict, then the final status
    assert any(h.get("voicemail") for h in job["history"])
    assert job["attempts"] == 1 and job["due_at"]  # tried again later, on the schedule


async def test_forged_twilio_callbacks_are_refused(tmp_path: Path) -> None:
    fake = FakeTwilioCalls()
    world = World([])
    try:
        async with running_server(world.wiring, env(tmp_path, fake)) as (_, port):
            url = "https://agent.example.com/dial/status?job=1"
            form = {"CallSid": "CA" + "2" * 32, "CallStatus": "completed"}
            forged = await trio.to_thread.run_sync(lambda: post_signed(port, url, form, signature="bm9wZQ=="))
            other_token = await trio.to_thread.run_sync(
                lambda: post_signed(port, url, form, signature=_sign("x" * 32, url, form)))
            good = await trio.to_thread.run_sync(lambda: post_signed(port, url, form))
            amd = await trio.to_thread.run_sync(lambda: post_signed(
                port, "https://agent.example.com/dial/amd?job=1", {"CallSid": form["CallSid"], "AnsweredBy": "human"},
                signature="bm9wZQ=="))
    finally:
        fake.close()
    assert (forged, other_token, good, amd) == (403, 403, 204, 403)


def _sign(token: str, url: str, form: dict[str, str]) -> str:
    from server.security import SignatureChecker

    return SignatureChecker(token).sign(url, form)


async def _true(value: bool) -> bool:
    return value


_ = (TOKEN, final_form)
