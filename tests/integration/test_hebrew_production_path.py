"""The production Hebrew configuration, end to end, seen only from the outside.

`agentlocator serve` runs as its own process exactly as deployed for Hebrew (AGENT_LANGUAGE
=he-IL, Google Speech-to-Text and Text-to-Speech, the rule brain, an SQLite file) with no
test-wiring hook: select_speech itself picks Google because GOOGLE_SPEECH_ENDPOINT /
GOOGLE_TTS_ENDPOINT name loopback fakes that speak the real protos (tests/speech/fake_google).
The simulated Twilio caller speaks Hebrew (espeak-ng) over a real websocket; the fake STT
answers each utterance, by order, with the scripted Hebrew final. We then check what the
world would see: the booked lead and transcript over the HTTP API, what reached Google, the
log.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

import numpy as np
import trio

from server.caller import script as sc
from server.caller.call import CallIds
from server.caller.client import place_call, prepare

from speech.sentences import split_sentences
from speech.spoken import spoken

from .harness import ahttp, server_process

sys.path.append(str(Path(__file__).resolve().parents[1] / "speech"))  # the Google fakes live there
from fake_google import FakeGoogle, FakeSpeech, FakeTts  # noqa: E402

# What the caller says (espeak-ng renders it) and what the fake STT hears, turn by turn.
CALLER_LINES = [
    "אני מחפש בתל אביב",
    "דירת 4 חדרים",
    "מיליון וחצי",
    "תוך שלושה חודשים",
    "קוראים לי דנה",
    "כן, נכון",  # the caller ID is the number to call back
    "הראשון",  # the first of the offered windows
    "כן",  # book it
    "לא, תודה",  # nothing else: the agent says goodbye and hangs up
]
CALL_SID = "CA" + "4eb1e3" + "0" * 26  # a Twilio-format CallSid (CA + 32 hex)
HEBREW = re.compile(r"[\u05d0-\u05ea]")


def _caller_script() -> str:
    lines = ["wait_agent 500 15"]
    for text in CALLER_LINES:
        lines += [f"say he-IL {text}", "wait_agent 500 15"]
    return "\n".join(lines + ["silence 3000", "hangup"]) + "\n"


async def _get_json(port: int, path: str) -> object:
    status, _, body = await ahttp("GET", port, path)
    assert status == 200, (path, status, body[:200])
    return json.loads(body)


async def test_a_hebrew_call_on_the_production_path_books_a_meeting(tmp_path: Path) -> None:
    steps = prepare(sc.parse_script(_caller_script()))  # espeak-ng, before the clock starts
    speech = FakeSpeech(script=CALLER_LINES, keep_audio=True)
    tts = FakeTts(ms_per_char=12)  # short agent audio keeps the call quick
    log_path = tmp_path / "server.log"
    with FakeGoogle(speech, tts) as google:
        env = {
            "AGENT_LANGUAGE": "he-IL", "BRAIN": "rules",
            "GOOGLE_SPEECH_ENDPOINT": google.endpoint, "GOOGLE_TTS_ENDPOINT": google.endpoint,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'agent.db'}",
            # whatever the developer's shell has: production selection, nothing forced
            "AGENTLOCATOR_TEST_WIRING": "", "ASR_PROVIDER": "", "TTS_PROVIDER": "", "WHISPER_MODEL": "",
            "DASHBOARD_TOKEN": "",
        }
        async with server_process(log_path, env) as (port, _):
            version = await _get_json(port, "/version")
            assert version["providers"] == {"asr": "google", "tts": "google", "brain": "rules"}, version
            assert (version["speech"]["asr"], version["speech"]["tts"], version["speech"]["language"]) == (
                "google", "google", "he-IL")
            assert version["speech"]["tts_fallback"] == "espeak"  # espeak-ng speaks only if Google fails

            with trio.fail_after(90):
                outcome = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", steps,
                                           ids=CallIds(call_sid=CALL_SID), subprotocols=["audio.twilio.com"])
            with trio.fail_after(10):  # the lead is written as the call ends
                while True:
                    leads = await _get_json(port, "/api/leads")
                    if leads and leads[0].get("status") == "meeting_booked":
                        break
                    await trio.sleep(0.1)
            detail = await _get_json(port, f"/api/calls/{CALL_SID}")
    log = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    call = outcome.call
    assert call.errors == [] and call.problems == [] and call.close_code == 1000

    # The lead, as the dashboard API serves it.
    assert len(leads) == 1
    lead = leads[0]
    assert (lead["area"], lead["property_type"], lead["rooms"], lead["budget_ils"]) == ("תל אביב", "דירה", 4, 1_500_000)
    assert (lead["name"], lead["phone"], lead["timeframe"]) == ("דנה", "+972501234567", "תוך 3 חודשים")
    started = dt.datetime.fromisoformat(detail["started_at"])
    assert lead["meeting_at"] and dt.datetime.fromisoformat(lead["meeting_at"]) > started
    assert detail["outcome"] == "meeting_booked" and detail["close_reason"] == "agent_hangup"

    # The transcript: the caller was heard as scripted; every agent turn is Hebrew and asks
    # exactly one question, at its end; the last one is the goodbye and asks nothing.
    turns = detail["transcript"]
    assert [t["text"] for t in turns if t["speaker"] == "caller"] == CALLER_LINES
    agent = [t["text"] for t in turns if t["speaker"] == "agent"]
    assert len(agent) == len(CALLER_LINES) + 1 and turns[0]["speaker"] == "agent" and turns[-1]["speaker"] == "agent"
    for text in agent:
        assert HEBREW.search(text), text
    for text in agent[:-1]:
        assert text.count("?") == 1 and text.endswith("?"), text
    assert "?" not in agent[-1] and "תודה" in agent[-1]
    assert all(t["heard_fully"] for t in turns)

    # Google TTS voiced every agent sentence (no espeak fallback): he-IL, 8 kHz, in its spoken
    # form (speech/spoken.py: "דירת 4 חדרים" is voiced "דירת ארבעה חדרים", the brand in Hebrew
    # letters), while the transcript above keeps the written form.
    assert tts.requests and set(tts.languages) == {"he-IL"}
    assert {(voice, rate) for _, voice, _, rate in tts.requests} == {("he-IL-Wavenet-A", 8000)}
    synthesized = {text for text, *_ in tts.requests}
    assert not any(re.search(r"[0-9A-Za-z]", text) for text in synthesized), synthesized
    assert any("4" in text for text in agent) and any("AgentLocator" in text for text in agent)
    for text in agent:
        rest = " ".join(spoken(sentence, "he-IL") for sentence in split_sentences(text))
        while rest:
            piece = next((r for r in synthesized if rest.startswith(r)), None)
            assert piece is not None, f"not synthesized by Google: {rest!r} (of {text!r})"
            rest = rest[len(piece):].lstrip()

    # Google STT: iw-IL, LINEAR16 at 8 kHz, one stream per utterance, each half-closed at
    # its end of utterance; all scripted finals used, in order.
    assert speech.script == []
    assert {(s.language, s.encoding, s.sample_rate, s.interim) for s in speech.streams} == {("iw-IL", "LINEAR16", 8000, True)}
    heard = [" ".join(s.words) for s in speech.streams if s.words]
    assert heard == CALLER_LINES and all(s.half_closed for s in speech.streams if s.words)
    # The audio is the caller's own PCM16, never μ-law bytes: the first stream began with the
    # call, so it holds exactly the call's first 2.6 s (16 bytes a millisecond: 8 kHz, 16 bit)
    # and matches what the caller sent up to G.711 quantization.
    first = speech.streams[0]
    first_eou = turns[1]["t_end_ms"]
    assert abs(first.audio_ms - first_eou) <= 100, (first.audio_ms, first_eou)
    got = np.frombuffer(bytes(first.audio), dtype="<i2").astype(np.float64)
    sent = call.caller.data[: len(got)].astype(np.float64)
    assert np.sqrt((sent**2).mean()) > 300  # the caller did speak in it
    snr_db = 10 * np.log10((sent**2).sum() / max(((sent - got) ** 2).sum(), 1.0))
    assert snr_db > 25, snr_db

    # The log: Google heard the call, nothing failed, nothing switched provider.
    events = [line["event"] for line in log]
    assert "ERROR" not in events and "PROVIDER_SWITCH" not in events
    assert not [line for line in log if line.get("level") in ("error", "critical")]
    asr = [line for line in log if line["event"] == "ASR_TEXT"]
    assert [a["text"] for a in asr] == CALLER_LINES
    assert {(a["provider"], a["failed"]) for a in asr} == {("google", False)}
    end = next(line for line in log if line["event"] == "CALL_END")
    assert end["outcome"] == "meeting_booked" and end["barge_ins"] == 0
    assert "Traceback" not in log_path.read_text()
