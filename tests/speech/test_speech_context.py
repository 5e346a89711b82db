"""Per-question speech contexts: each Google stream carries the phrase hints of the question
the agent just asked (speech/hints.py), against the fake Google server."""
from __future__ import annotations

import datetime as dt

import trio

from dialog.base import CallerTurn
from dialog.rules import RuleBrain
from dialog.schedule import TZ
from speech.base import SpeechContext
from speech.hints import CLASS_TOKENS, NEAR_BOOST, QUESTION_BOOST, context_phrases
from speech.google_stt import GoogleSttSettings, GoogleStreamingRecognizer, make_speech_client
from test_google_stt import Driver, make
from tone_words import silence

async def until(check, timeout_s: float = 5.0) -> None:
    with trio.fail_after(timeout_s):
        while not check():
            await trio.sleep(0.01)


BUDGET = "מיליון שמונה"  # a budget-question phrase
PLACE = "נווה צדק"  # an area-question phrase (a neighbourhood, not in the standing hints)


async def test_the_stream_after_the_budget_question_carries_money_phrases(fake_google):
    rec = make(fake_google)
    asked = [SpeechContext("area")]
    rec.follow_context(lambda: asked[0])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        streams = fake_google.speech.streams
        await d.play(silence(500))
        await until(lambda: len(streams) >= 1)  # (the fake numbers streams as they reach it)
        await d.say([11])  # the caller names the area
        await until(lambda: len(streams) >= 2)
        asked[0] = SpeechContext("budget_ils")  # the agent asks the budget while the caller is silent
        await d.play(silence(600))
        await until(lambda: len(streams) >= 3)
        answer = await d.say([12, 13])
        await until(lambda: len(fake_google.speech.streams) >= 4)
        nursery.cancel_scope.cancel()
    streams = fake_google.speech.streams
    assert PLACE in streams[0].phrases and BUDGET not in streams[0].phrases
    # the EOU's stream still expected the area; the budget question rotated to one that expects money
    budget_streams = [s for s in streams if BUDGET in s.phrases]
    assert budget_streams and budget_streams[0].number == 3 and rec.restarts["context"] == 1
    first = budget_streams[0]
    assert first.boosts[BUDGET] == QUESTION_BOOST and first.boosts["תל אביב"] == 10.0  # standing hints stay
    assert PLACE not in first.phrases and not any(p.startswith("$") for p in first.phrases)  # no class tokens for iw-IL
    assert answer.text == "w12 w13"  # the words heard by the rotated stream all come back


async def test_a_question_asked_while_the_caller_talks_waits_for_the_eou(fake_google):
    rec = make(fake_google)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        await d.play(silence(500))
        await until(lambda: len(fake_google.speech.streams) >= 1)
        onset = d.now
        rec.begin_utterance(onset)
        await d.play(silence(200))
        rec.set_context(SpeechContext("budget_ils"))  # mid-utterance: no rotation now
        assert rec.restarts["context"] == 0 and len(fake_google.speech.streams) <= 1
        await d.play(silence(300))
        await rec.end_utterance(onset, d.now)
        await d.play(silence(200))
        await until(lambda: len(fake_google.speech.streams) >= 2)
        nursery.cancel_scope.cancel()
    streams = fake_google.speech.streams
    assert BUDGET not in streams[0].phrases and BUDGET in streams[1].phrases
    assert rec.restarts["context"] == 0 and rec.restarts["eou"] == 1


async def test_the_rule_brain_drives_the_context_and_names_the_neighbours(fake_google):
    brain = RuleBrain("he-IL", "+972501234567", dt.datetime(2026, 11, 25, 15, tzinfo=TZ))
    rec = make(fake_google)
    rec.follow_context(brain.speech_context)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        await d.play(silence(500))
        await until(lambda: len(fake_google.speech.streams) >= 1)
        assert brain.speech_context() == SpeechContext("area")
        [s async for s in brain.respond(CallerTurn("דירת 4 חדרים בחולון", 0.9))]  # -> the budget question
        await d.play(silence(300))
        assert brain.speech_context().expecting == "budget_ils"
        await until(lambda: any(BUDGET in s.phrases for s in fake_google.speech.streams))
        nursery.cancel_scope.cancel()
    phrases = [s.phrases for s in fake_google.speech.streams]
    assert PLACE in phrases[0] and any(BUDGET in p for p in phrases[1:])
    assert brain.speech_context().near == ("בת ים", "ראשון לציון", "תל אביב", "יפו")  # next to חולון


def test_the_area_question_boosts_the_neighbours_above_the_rest():
    groups = context_phrases("he-IL", SpeechContext("area", near=("בת ים", "ראשון לציון")))
    assert groups[0] == (("בת ים", "ראשון לציון"), NEAR_BOOST) and NEAR_BOOST > QUESTION_BOOST
    assert PLACE in groups[1][0] and "הרצליה פיתוח" in groups[1][0]
    assert context_phrases("he-IL", None) == [] and context_phrases("he-IL", SpeechContext(None)) == []


def test_english_gets_the_class_tokens_of_its_locale_hebrew_none():
    en = context_phrases("en-US", SpeechContext("budget_ils"))
    assert (CLASS_TOKENS["en"]["budget_ils"], QUESTION_BOOST) in en
    he = context_phrases("iw-IL", SpeechContext("budget_ils"))
    assert not any(p.startswith("$") for group, _ in he for p in group)
    assert not any(p.startswith("$") for group, _ in context_phrases("en-US", SpeechContext("budget_ils"),
                                                                       class_tokens=False) for p in group)


async def test_v2_streams_carry_the_question_too(fake_google):
    env = {"GOOGLE_SPEECH_ENDPOINT": fake_google.endpoint, "GOOGLE_SPEECH_API": "v2",
           "GOOGLE_CLOUD_PROJECT": "agentlocator-test", "GOOGLE_SPEECH_LOCATION": "eu"}
    settings = GoogleSttSettings.from_env(env)
    rec = GoogleStreamingRecognizer(make_speech_client(env, settings), settings, "he-IL", log=lambda *a, **k: None)
    rec.set_context(SpeechContext("deal"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        await d.play(silence(300))
        await until(lambda: fake_google.speech.streams)
        nursery.cancel_scope.cancel()
    first = fake_google.speech.streams[0]
    assert first.api == "v2" and first.boosts["לשכירות"] == QUESTION_BOOST
