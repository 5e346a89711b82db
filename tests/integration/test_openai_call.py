"""The OpenAI brain through whole calls: real server, real session and pacer, real sockets.

The app is built by the REAL wiring (server.wiring.build_wiring) from the environment:
BRAIN=openai, OPENAI_API_KEY / OPENAI_BASE_URL / OPENAI_MODEL pointing at the fake OpenAI
server (tests/dialog/fake_openai.py: real HTTP + SSE on loopback), an SQLite store, its
outbox sender and the dashboard API. Only the speech providers are fakes: select_speech is
swapped, for the duration of build_wiring, for one that returns the corpus's oracle ASR (it
knows what the caller said, when) and a synthetic-voice TTS that records its texts (the
caller's own voice is espeak-ng, rendered before the calls).

The caller is the corpus's caller line (tests/corpus/line.py) bridged to a trio-websocket
client (tests/corpus/sockets.py), in real time. Everything is asserted from the outside:
the requests the fake OpenAI server got, what the caller heard (played frames matched to the
TTS renders, as the corpus judge does), and the store as the dashboard API serves it.

  a) a Hebrew call to a booked meeting: text + update_lead tool calls, stored lead,
     transcript, the WhatsApp summary queued (dry run: no Twilio credentials);
  b) a barge-in cuts the model's reply before its update_lead call has streamed (the fake
     holds the stream after the first sentence): the caller's slots survive, in the next
     request's state note and in the stored lead;
  c) "sorry, what?" over the socket: the last question again, and no model request for it.

The three calls run at once (each its own fake OpenAI, server and database), ~25 s of wall
time in all.
"""
from __future__ import annotations

import copy
import json
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Mapping
from unittest import mock

import pytest
import trio
import trio_websocket

from dialog.phrases import EN, HE
from dialog.prompt import FEW_SHOT, INTERRUPTED_MARK
from leads.fields import sid_for
from server.settings import Settings
from server.wiring import Wiring, build_wiring
from speech.providers import SpeechProviders

from tests.corpus.caller import CallerScript, Step
from tests.corpus.judge import AgentAudio
from tests.corpus.line import CallerLine
from tests.corpus.oracle_asr import OracleRecognizer
from tests.corpus.scenarios import answer, en, he, interrupt, repeat
from tests.corpus.sockets import ACCOUNT_SID, WS_PATH, RealTimeAgentVoice, admit_line, bridge
from tests.corpus.voices import prerender
from tests.dialog.fake_openai import FakeOpenAI, Script

from .harness import ahttp, running_server

NOTE = 1 + len(FEW_SHOT)  # index of the state note in a request's messages
CALL_LIMIT_S = 60.0
CALLER_PHONE = "+972501234567"  # what the caller line sends as `from`


@dataclass
class Heard:
    """One text the agent's TTS was asked for, as it played at the caller (line clock, s)."""

    text: str
    start: float  # its first audible frame
    end: float  # the end of its last audible frame (cut short by a `clear`, if it was)
    full: bool  # played to its end (not cut)


@dataclass
class OpenAICall:
    """One whole call: what the caller does, what the fake model answers, and what came of it."""

    name: str
    language: str
    steps: tuple[Step, ...]
    scripts: tuple[Script, ...]
    agent: str = "synth"  # the agent's voice: "synth" (synthetic speech) or "espeak"
    # filled by the run
    requests: list[dict] = field(default_factory=list)
    heard: list[Heard] = field(default_factory=list)
    said: list[tuple[str, float, float]] = field(default_factory=list)  # caller: (text, voice start, voice end)
    version: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    leads: list[dict] = field(default_factory=list)
    outbox: list[dict] = field(default_factory=list)
    whatsapp: list[str] = field(default_factory=list)  # the follow-up texts in the store's outbox
    closed_by: str = ""
    wall_s: float = 0.0

    @property
    def call_sid(self) -> str:
        return sid_for("CA", f"openai-{self.name}")

    def heard_after(self, t: float) -> list[Heard]:
        return [h for h in self.heard if h.start >= t]


def fake_speech(oracle: OracleRecognizer, voice: RealTimeAgentVoice):
    def select_speech(env: Mapping[str, str]) -> SpeechProviders:
        return SpeechProviders(
            new_recognizer=lambda language: oracle, synthesizer=voice, asr_name=oracle.name, tts_name=voice.name,
            asr_fallback=None, tts_fallback=None, language=env.get("AGENT_LANGUAGE") or "he-IL",
            reasons=("test: the corpus's oracle ASR and synthetic voice",),
        )

    return select_speech


@contextmanager
def speech_swapped(oracle: OracleRecognizer, voice: RealTimeAgentVoice) -> Iterator[None]:
    # build_wiring imports select_speech when it runs; it is synchronous, so the swap cannot
    # leak into another server starting at the same time.
    with mock.patch("speech.providers.select_speech", fake_speech(oracle, voice)):
        yield


async def get_json(port: int, path: str) -> Any:
    status, _, body = await ahttp("GET", port, path)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


async def run_call(call: OpenAICall, db: Path) -> None:
    clips = prerender([s.voice for s in call.steps])
    line = CallerLine(snr_db=30.0, call_sid=call.call_sid, stream_sid=sid_for("MZ", call.name), account_sid=ACCOUNT_SID)
    oracle = OracleRecognizer(lambda: line.placed, line.now)
    voice = RealTimeAgentVoice(call.language, call.agent)
    script = CallerScript(call.steps, clips, oracle)
    fake = FakeOpenAI()
    fake.push(*call.scripts)

    def wiring(settings: Settings) -> Wiring:
        with speech_swapped(oracle, voice):
            return build_wiring(settings)

    env = {
        "AGENT_LANGUAGE": call.language, "BRAIN": "openai", "OPENAI_API_KEY": "sk-test",
        "OPENAI_MODEL": "fake-model", "DATABASE_URL": f"sqlite:///{db}",
    }
    started = time.perf_counter()
    with trio.fail_after(CALL_LIMIT_S):
        async with trio.open_nursery() as outer:
            await outer.start(fake.serve)
            env["OPENAI_BASE_URL"] = fake.base_url
            async with running_server(wiring, env) as (_, port):
                call.version = await get_json(port, "/version")
                url = f"ws://127.0.0.1:{port}{WS_PATH}"
                await admit_line(line, port)
                async with trio_websocket.open_websocket_url(url, subprotocols=["audio.twilio.com"]) as ws:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(bridge, line, ws)
                        await line.run(script)  # returns once the server has closed the socket
                        nursery.cancel_scope.cancel()
                # The session stores the call's end after closing the socket.
                while not (detail := await get_json(port, f"/api/calls/{call.call_sid}")).get("close_reason"):
                    await trio.sleep(0.05)
                call.detail = detail
                call.leads = await get_json(port, "/api/leads")
                while True:  # the follow-up is queued with the call's end, then the sender takes it
                    call.outbox = await get_json(port, "/api/outbox")
                    if any(o["state"] not in ("pending", "sending") for o in call.outbox):
                        break
                    await trio.sleep(0.05)
            fake.gate.set()  # a reply held by the fake (call b) may finish into the closed socket
            outer.cancel_scope.cancel()
    call.wall_s = time.perf_counter() - started
    with sqlite3.connect(db) as conn:
        call.whatsapp = [row[0] for row in conn.execute(
            "SELECT body FROM outbox WHERE call_sid = ? AND channel = 'whatsapp'", (call.call_sid,))]
    call.requests = list(fake.requests)
    call.closed_by = line.link.closed_by
    call.said = [(p.step.voice.text, p.placed.voice_start, p.placed.voice_end) for p in script.performed]
    rec = line.record()
    audio = AgentAudio(SimpleNamespace(line=rec, synth=voice.calls))  # type: ignore[arg-type]
    for c in voice.calls:
        spans = [(a, b) for a, b, k, _ in audio.ids if k == c.index]
        if spans:
            call.heard.append(Heard(c.text, spans[0][0], max(b for _, b in spans), audio.complete(c.index)))
    call.heard.sort(key=lambda h: h.start)


# -- the calls ---------------------------------------------------------------------------------

HE_SAID = ("דירה בחיפה עד שני מיליון תוך שנה, קוראים לי דנה", "כן", "מחר בעשר")
HE_REPLIES = (  # the model's replies, sentence by sentence as the brain hands them to the TTS
    ("נעים מאוד, דנה.", "לחזור אלייך למספר הזה?"),
    ("מחר בעשר או ביום חמישי באחת?",),
    ("קבעתי לך פגישה מחר בעשר, תודה ויום נעים.",),
)
BOOKED = OpenAICall(
    "booked", "he-IL",
    tuple(answer(he(text)) for text in HE_SAID),
    (
        Script(" ".join(HE_REPLIES[0]), tool_args={"area": "חיפה", "property_type": "דירה", "budget_ils": 2_000_000,
                                                   "timeframe": "תוך שנה", "name": "דנה"}),
        Script(" ".join(HE_REPLIES[1]), tool_args={"phone_confirmed": True}),
        Script(" ".join(HE_REPLIES[2]), tool_args={"meeting_window": 0, "meeting_confirmed": True, "call_done": True}),
    ),
)

EN_WANTS = "a three room flat in Haifa"
EN_WAIT = "wait, I also need parking"
EN_BUDGET = "up to two million"
CUT_REPLY = "Great, a flat in Haifa. What's your budget?"
CUT = OpenAICall(
    "cut", "en-US",
    (answer(en(EN_WANTS)), interrupt(en(EN_WAIT), 0.8), answer(en(EN_BUDGET))),
    (
        # Held after "Great, a flat in Haifa." (5 deltas): the question and the tool call never
        # stream before the barge-in. Its area is not what the caller said, so it would show.
        Script(CUT_REPLY, gate_after=5, tool_args={"area": "Tel Aviv", "property_type": "house"}),
        Script("Sure, parking noted. What's your budget?"),
        Script("Got it. When are you planning to move?", tool_args={"budget_ils": 2_000_000}),
    ),
)

WHAT = "sorry, what?"
EN_QUESTION = "What kind of property are you looking for?"
REPEAT = OpenAICall(
    "repeat", "en-US",
    (repeat(en(WHAT)), answer(en("in Haifa")), repeat(en(WHAT))),
    (Script(f"Great, Haifa. {EN_QUESTION}", tool_args={"area": "Haifa"}),),
)

CALLS = (BOOKED, CUT, REPEAT)


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OpenAICall]:
    tmp = tmp_path_factory.mktemp("openai_calls")
    runs = copy.deepcopy(CALLS)
    prerender([s.voice for call in runs for s in call.steps])

    async def all_at_once() -> None:
        async with trio.open_nursery() as nursery:
            for call in runs:
                nursery.start_soon(run_call, call, tmp / f"{call.name}.db")

    trio.run(all_at_once)  # the wall clock
    return {call.name: call for call in runs}


def lead_of(call: OpenAICall) -> dict:
    assert len(call.leads) == 1, call.leads
    lead = call.leads[0]
    assert lead["phone"] == CALLER_PHONE
    return lead


def caller_turns(call: OpenAICall) -> list[str]:
    return [t["text"] for t in call.detail["transcript"] if t["speaker"] == "caller"]


def agent_turns(call: OpenAICall) -> list[tuple[str, bool]]:
    return [(t["text"], t["heard_fully"]) for t in call.detail["transcript"] if t["speaker"] == "agent"]


# -- all three -----------------------------------------------------------------------------------


def test_the_real_wiring_runs_the_openai_brain(calls) -> None:
    for call in calls.values():
        assert call.version["providers"] == {"asr": "oracle-asr", "tts": "corpus-synth", "brain": "openai"}
        assert call.wall_s < CALL_LIMIT_S and call.closed_by == "server"
        for req in call.requests:
            assert req["_path"] == "/v1/chat/completions" and req["_auth"] == "Bearer sk-test"
            assert req["model"] == "fake-model" and req["stream"] is True
            assert [t["function"]["name"] for t in req["tools"]] == ["update_lead"]
        # every call ends with its lead stored and a WhatsApp follow-up queued (a dry run: no
        # Twilio credentials)
        lead_of(call)
        assert [(o["call_sid"], o["channel"], o["phone"], o["state"]) for o in call.outbox] == [
            (call.call_sid, "whatsapp", CALLER_PHONE, "dry_run")]
        assert len(call.whatsapp) == 1


# -- a) a whole call to a booked meeting -------------------------------------------------------


def test_a_call_with_the_model_books_a_meeting(calls) -> None:
    call = calls["booked"]
    # One request per caller turn, each ending with the caller's words as the ASR gave them and
    # holding what the caller heard before (the model's previous reply).
    assert [r["messages"][-1] for r in call.requests] == [{"role": "user", "content": s} for s in HE_SAID]
    for prev, req in zip(HE_REPLIES, call.requests[1:]):
        assert {"role": "assistant", "content": " ".join(prev)} in req["messages"]
    # The state note follows the tool calls: nothing known, then the slots, then (all filled,
    # the phone confirmed) the real free windows to offer.
    notes = [r["messages"][NOTE]["content"] for r in call.requests]
    assert "ידוע: עדיין כלום." in notes[0]
    known = ("area=חיפה", "property_type=דירה", "budget_ils=2000000", "timeframe=תוך שנה", "name=דנה")
    assert all(k in notes[1] for k in known) and "חסר: phone" in notes[1] and "חלונות" not in notes[1]
    windows = re.search(r"חלונות פנויים לפגישה[^:]*: 0: [^(]*\((\d\d)\.(\d\d) (\d\d):(\d\d)\)", notes[2])
    assert windows, notes[2]

    # What the caller heard: the greeting, then every sentence of every reply in full, each
    # after the caller's turn it answers and before the next; the model's goodbye last.
    expected = [HE["opening"], *[s for reply in HE_REPLIES for s in reply]]
    assert [(h.text, h.full) for h in call.heard] == [(text, True) for text in expected]
    firsts = [call.heard[1], call.heard[3], call.heard[4]]
    for (_, _, said_end), first, nxt in zip(call.said, firsts, [*[s[1] for s in call.said[1:]], 1e9]):
        assert said_end < first.start < nxt

    # The agent hung up after its goodbye; the store has the booked meeting (the window the
    # model chose, as offered in the state note), the transcript and the follow-up.
    assert call.detail["close_reason"] == "agent_hangup" and call.detail["outcome"] == "meeting_booked"
    lead = lead_of(call)
    assert (lead["area"], lead["property_type"], lead["budget_ils"], lead["timeframe"], lead["name"]) == (
        "חיפה", "דירה", 2_000_000, "תוך שנה", "דנה")
    assert lead["status"] == "meeting_booked"
    day, month, hour, minute = windows.groups()
    assert lead["meeting_at"][5:16] == f"{month}-{day}T{hour}:{minute}", lead["meeting_at"]
    assert caller_turns(call) == list(HE_SAID)
    assert agent_turns(call) == [(HE["opening"], True), *[(" ".join(r), True) for r in HE_REPLIES]]
    summary = call.whatsapp[0]
    assert "דירה בחיפה" in summary and "2,000,000" in summary and f"{day}.{month}" in summary and f"{hour}:{minute}" in summary


# -- b) a barge-in before the tool call ----------------------------------------------------------


def test_slots_survive_a_barge_in_before_the_tool_call(calls) -> None:
    call = calls["cut"]
    (_, _, _), (_, barge_at, barge_end), _ = call.said
    # The caller heard the reply's first sentence, cut by the barge-in; its question and its
    # tool call were still held by the fake server.
    cut = call.heard[1]
    assert (cut.text, cut.full) == ("Great, a flat in Haifa.", False)
    assert cut.start < barge_at < cut.end < barge_end
    assert cut.end - barge_at < 0.5  # (the corpus judges halt times; here: it was a real cut)
    assert [(h.text, h.full) for h in call.heard[2:]] == [
        ("Sure, parking noted.", True), ("What's your budget?", True),
        ("Got it.", True), ("When are you planning to move?", True)]
    assert all(h.start > barge_end for h in call.heard[2:])

    # The next request is the interruption's own turn, and its state note carries the slots
    # the caller gave: the rules took them from the caller's words when the reply was cut.
    assert len(call.requests) == 3
    first, after_cut, last = call.requests
    assert first["messages"][-1] == {"role": "user", "content": EN_WANTS}
    assert after_cut["messages"][-1] == {"role": "user", "content": INTERRUPTED_MARK + EN_WAIT}
    note = after_cut["messages"][NOTE]["content"]
    assert "area=Haifa, property_type=apartment, rooms=3.0" in note and "budget_ils" not in note.split("\n")[1], note
    assert last["messages"][-1] == {"role": "user", "content": EN_BUDGET}
    # The held tool call (area "Tel Aviv", a house) never arrived, so nothing of it anywhere.
    assert "Tel Aviv" not in json.dumps(call.requests[1:]) + json.dumps(call.leads)

    lead = lead_of(call)
    assert (lead["area"], lead["property_type"], lead["rooms"], lead["budget_ils"]) == ("Haifa", "apartment", 3, 2_000_000)
    assert call.detail["close_reason"] == "twilio_stop"
    assert caller_turns(call) == [EN_WANTS, EN_WAIT, EN_BUDGET]
    turns = agent_turns(call)
    assert len(turns) == 4 and not turns[1][1] and "Great, a flat in Haifa.".startswith(turns[1][0])
    assert "Haifa" in call.whatsapp[0] and "2,000,000" in call.whatsapp[0]


# -- c) "sorry, what?" -------------------------------------------------------------------------


def test_sorry_what_repeats_the_last_question_without_a_request(calls) -> None:
    call = calls["repeat"]
    (_, _, first_what_end), (_, answer_at, answer_end), (_, _, second_what_end) = call.said
    # Each "sorry, what?" was answered with the last question, word for word ...
    opening_question = "Which area are you looking in?"
    assert EN["opening"].endswith(opening_question)
    assert [(h.text, h.full) for h in call.heard if first_what_end < h.start < answer_at] == [(opening_question, True)]
    assert [(h.text, h.full) for h in call.heard if answer_end < h.start < second_what_end] == [
        ("Great, Haifa.", True), (EN_QUESTION, True)]
    assert [(h.text, h.full) for h in call.heard if h.start > second_what_end] == [(EN_QUESTION, True)]
    # ... and only the caller's answer went to the model.
    assert len(call.requests) == 1
    assert call.requests[0]["messages"][-3:] == [
        {"role": "user", "content": WHAT},
        {"role": "assistant", "content": opening_question},
        {"role": "user", "content": "in Haifa"},
    ]
    assert caller_turns(call) == [WHAT, "in Haifa", WHAT]
    assert agent_turns(call) == [(EN["opening"], True), (opening_question, True),
                                 (f"Great, Haifa. {EN_QUESTION}", True), (EN_QUESTION, True)]
    assert lead_of(call)["area"] == "Haifa"
