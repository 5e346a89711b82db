"""The OpenAI brain around the new turn machine, against the fake server: "sorry, what?",
low-confidence value checks, a goodbye talked over, slots kept when a barge-in cuts the
reply before its tool call, and retract(). Replies are judged by hand, not by guardrails."""
from __future__ import annotations

import copy

import pytest
import trio

from dialog_corpus import CALLER, NOW
from dialog.base import CLARIFY_HE, CallerTurn
from dialog.openai_brain import OpenAIBrain, OpenAIConfig
from dialog.phrases import EN, HE
from dialog.prompt import FEW_SHOT, INTERRUPTED_MARK
from fake_openai import Script

NOTE = 1 + len(FEW_SHOT)  # index of the state note in a request's messages

ALL_BUT_NAME = {"area": "תל אביב", "property_type": "דירה", "rooms": 4, "budget_ils": 2_000_000,
                "timeframe": "תוך שנה", "phone_confirmed": True}


def make(fake, language="he-IL", **kw) -> OpenAIBrain:
    config = OpenAIConfig(api_key="sk-test", model="fake-model", base_url=fake.base_url, **kw)
    brain = OpenAIBrain(config, language, CALLER, NOW)
    brain.heard(brain.opening(), True)
    return brain


async def say(brain, text, confidence=0.9, interrupted=False, heard=True) -> str:
    with trio.fail_after(10):
        out = [s async for s in brain.respond(CallerTurn(text, confidence, interrupted))]
    reply = " ".join(out)
    if heard:
        brain.heard(reply, True)
    return reply


def one_question(reply: str) -> bool:
    return reply.count("?") == 1 and reply.endswith("?") and len(reply.split()) <= 20


def state(brain: OpenAIBrain) -> tuple:
    rules = {k: v for k, v in vars(brain.rules).items() if k not in ("say", "lead")}
    return copy.deepcopy((
        rules, brain.lead, brain.history, brain.windows, brain.chosen, brain.finished, brain.fallback,
        brain._unheard, brain.violations,
    ))


# -- "sorry, what?" ------------------------------------------------------------------------------


async def test_what_repeats_the_last_question_with_no_request_and_the_history_follows(fake_openai):
    fake_openai.push(Script("מעולה, דירה בתל אביב. כמה חדרים צריך?"), Script("מצוין. מה התקציב?"))
    brain = make(fake_openai)
    await say(brain, "דירה בתל אביב")
    before = copy.deepcopy(brain.lead)
    assert await say(brain, "סליחה, מה?") == "כמה חדרים צריך?"
    assert len(fake_openai.requests) == 1 and brain.lead == before
    await say(brain, "4 חדרים")
    tail = fake_openai.requests[1]["messages"][-4:]
    assert tail == [
        {"role": "assistant", "content": "מעולה, דירה בתל אביב. כמה חדרים צריך?"},
        {"role": "user", "content": "סליחה, מה?"},
        {"role": "assistant", "content": "כמה חדרים צריך?"},
        {"role": "user", "content": "4 חדרים"},
    ]


async def test_what_before_any_answer_repeats_the_opening_question(fake_openai):
    brain = make(fake_openai, language="en-US")
    assert await say(brain, "sorry, what?") == "Which area are you looking in?"
    assert fake_openai.requests == []


async def test_what_after_a_cut_reply_repeats_the_question_it_asked(fake_openai):
    fake_openai.push(Script("Great, a flat in Haifa. How many rooms do you need?"))
    brain = make(fake_openai, language="en-US")
    out = [s async for s in brain.respond(CallerTurn("a flat in Haifa", 0.9))]
    assert out[-1] == "How many rooms do you need?"
    brain.heard("Great, a flat", heard_fully=False)
    assert await say(brain, "what?", interrupted=True) == "How many rooms do you need?"
    assert len(fake_openai.requests) == 1


async def test_what_after_the_clarify_line_is_not_the_clarify_line(fake_openai):
    fake_openai.push(Script("מעולה. כמה חדרים צריך?"))
    brain = make(fake_openai)
    await say(brain, "דירה בחיפה")
    assert await say(brain, "ממ", confidence=0.1) == CLARIFY_HE
    assert await say(brain, "מה?") == "כמה חדרים צריך?"


# -- low-confidence values -------------------------------------------------------------------------


async def test_a_low_confidence_value_is_checked_and_a_yes_stores_it_without_requests(fake_openai):
    fake_openai.push(Script("מעולה. מה התקציב בערך?", tool_args={"area": "תל אביב", "property_type": "דירה", "rooms": 4}))
    brain = make(fake_openai)
    await say(brain, "דירת 4 חדרים בתל אביב")
    check = await say(brain, "שני מיליון", confidence=0.35)
    assert check == "עד שני מיליון, נכון?" and brain.lead.slots.budget_ils is None
    reply = await say(brain, "כן")
    assert brain.lead.slots.budget_ils == 2_000_000
    assert reply.endswith(HE["q_timeframe"]) and one_question(reply)
    assert len(fake_openai.requests) == 1  # neither the check nor the yes asked the model
    fake_openai.push(Script("מעולה. איך קוראים לך?"))
    await say(brain, "תוך שנה")
    assert "budget_ils=2000000" in fake_openai.requests[1]["messages"][NOTE]["content"]


async def test_a_no_to_the_check_asks_again_without_a_request(fake_openai):
    brain = make(fake_openai, language="en-US")
    assert await say(brain, "in Haifa", confidence=0.4) == "In Haifa, right?"
    reply = await say(brain, "no")
    assert reply == f"{EN['confirm_no']} {EN['q_area']}" and one_question(reply)
    assert brain.lead.slots.area is None and fake_openai.requests == []


async def test_a_correction_drops_the_check_and_the_model_takes_it(fake_openai):
    fake_openai.push(Script("רשמתי, חולון. איזה סוג נכס?", tool_args={"area": "חולון"}))
    brain = make(fake_openai)
    await say(brain, "בחיפה", confidence=0.3)
    await say(brain, "לא, בחולון")
    assert brain.lead.slots.area == "חולון" and brain.rules.pending is None
    assert fake_openai.requests[0]["messages"][-1] == {"role": "user", "content": "לא, בחולון"}


async def test_a_yes_that_fills_the_last_slot_offers_the_meeting(fake_openai):
    fake_openai.push(Script("מעולה. איך קוראים לך?", tool_args=ALL_BUT_NAME))
    brain = make(fake_openai)
    await say(brain, "דירת 4 חדרים בתל אביב, 2 מיליון, תוך שנה, והמספר נכון")
    assert await say(brain, "קוראים לי דנה", confidence=0.4) == "דנה, נכון?"
    reply = await say(brain, "כן")
    assert brain.lead.slots.name == "דנה" and brain.lead.status == "qualified" and len(brain.windows) == 3
    assert " או " in reply and one_question(reply) and len(fake_openai.requests) == 1


@pytest.mark.parametrize("confidence", [0.1, 0.4])
async def test_no_value_or_very_low_confidence_is_the_clarify_line(fake_openai, confidence):
    brain = make(fake_openai)
    text = "בחיפה" if confidence < 0.2 else "אממ ה"
    assert await say(brain, text, confidence=confidence) == CLARIFY_HE
    assert brain.rules.pending is None and fake_openai.requests == []


# -- the goodbye, talked over ------------------------------------------------------------------


@pytest.mark.parametrize("lang, bye, change, answer, thanks, again", [
    ("he-IL", "תודה רבה, יום נעים.", "רגע, בעצם עד שני מיליון", "עדכנתי. יש עוד משהו?", "תודה, ביי", HE["bye_again"]),
    ("en-US", "Thank you, have a great day.", "wait, make it two million", "Updated. Anything else?", "thanks, bye",
     EN["bye_again"]),
])
async def test_talking_over_the_goodbye_reopens_the_call(fake_openai, lang, bye, change, answer, thanks, again):
    fake_openai.push(
        Script(bye, tool_args={"call_done": True}),
        Script(answer, tool_args={"budget_ils": 2_000_000}),
    )
    brain = make(fake_openai, language=lang)
    assert await say(brain, "לא, זהו" if lang == "he-IL" else "no, that's all", heard=False) == bye
    assert brain.finished and brain._client is None
    brain.heard(bye.split()[0], heard_fully=False)
    reply = await say(brain, change, interrupted=True)
    assert not brain.finished and reply == answer and brain.lead.slots.budget_ils == 2_000_000
    assert fake_openai.requests[1]["messages"][-1] == {"role": "user", "content": INTERRUPTED_MARK + change}
    question = answer.split(". ")[-1]  # the question sentence alone, not the goodbye
    assert await say(brain, "what?" if lang == "en-US" else "מה?") == question
    fake_openai.push(Script(bye, tool_args={"call_done": True}))
    assert await say(brain, "no" if lang == "en-US" else "לא") == bye and brain.finished  # the model's goodbye
    assert await say(brain, thanks) == again and brain.finished  # only thanks over it: a short one, no request
    assert len(fake_openai.requests) == 3 and brain._client is None
    assert await say(brain, "what?" if lang == "en-US" else "מה?") == again and brain.finished


async def test_what_over_the_goodbye_says_the_goodbye_again(fake_openai):
    fake_openai.push(Script("תודה רבה, יום נעים.", tool_args={"call_done": True}))
    brain = make(fake_openai)
    await say(brain, "זהו, תודה")
    assert await say(brain, "מה?", interrupted=True) == "תודה רבה, יום נעים." and brain.finished
    assert len(fake_openai.requests) == 1


async def test_a_lost_lead_that_talks_over_the_goodbye_is_back(fake_openai):
    fake_openai.push(Script("", tool_args={"not_interested": True}), Script("מעולה. איזה סוג נכס?", tool_args={"area": "חיפה"}))
    brain = make(fake_openai)
    await say(brain, "לא מעוניין")
    assert brain.finished and brain.lead.status == "lost"
    await say(brain, "רגע, בעצם כן, בחיפה", interrupted=True)
    assert not brain.finished and brain.lead.status == "new" and brain.lead.slots.area == "חיפה"


# -- slots survive a cut -----------------------------------------------------------------------


@pytest.mark.parametrize("lang, caller, model, first, slots", [
    ("he-IL", "אני מחפש דירה בחיפה", "מעולה, דירה בחיפה. כמה חדרים צריך?", "מעולה, דירה בחיפה.",
     {"area": "חיפה", "property_type": "דירה"}),
    ("en-US", "a three room flat in Haifa", "Great, a flat in Haifa. What's your budget?", "Great, a flat in Haifa.",
     {"area": "Haifa", "property_type": "apartment", "rooms": 3}),
])
async def test_a_barge_in_before_the_tool_call_keeps_the_callers_slots(fake_openai, lang, caller, model, first, slots):
    fake_openai.push(Script(model, gate_after=5, tool_args={"area": "ignored"}), Script("Go on?"))
    brain = make(fake_openai, language=lang)
    with trio.fail_after(5):
        agen = brain.respond(CallerTurn(caller, 0.9))
        assert await agen.__anext__() == first
        await agen.aclose()  # what the session does on a barge-in
    for key, value in slots.items():
        assert getattr(brain.lead.slots, key) == value
    brain.heard(first.split()[0], heard_fully=False)
    await say(brain, "רגע" if lang == "he-IL" else "wait, one more thing")
    note = fake_openai.requests[1]["messages"][NOTE]["content"]
    for key, value in slots.items():
        assert f"{key}={value}" in note


async def test_a_tool_call_that_arrives_stays_authoritative(fake_openai):
    fake_openai.push(Script("רשמתי. כמה חדרים?", tool_args={"area": "הכרמל, חיפה"}))
    brain = make(fake_openai)
    await say(brain, "דירה בחיפה")
    assert brain.lead.slots.area == "הכרמל, חיפה"  # not the rules' "חיפה"
    assert brain.lead.slots.property_type is None  # nor anything else the rules would have read


async def test_a_cut_reply_goes_to_the_history_as_far_as_it_was_handed_out(fake_openai):
    fake_openai.push(Script("מעולה, דירה בחיפה. כמה חדרים צריך?", gate_after=5), Script("כמה חדרים?"))
    brain = make(fake_openai)
    agen = brain.respond(CallerTurn("דירה בחיפה", 0.9))
    await agen.__anext__()
    await agen.aclose()
    await say(brain, "ארבעה")  # no heard() for the cut reply: what was handed out counts
    assert {"role": "assistant", "content": "מעולה, דירה בחיפה."} in fake_openai.requests[1]["messages"]


# -- retract -----------------------------------------------------------------------------------


async def test_retract_of_a_whole_model_turn(fake_openai):
    fake_openai.push(
        Script("מעולה. כמה חדרים?", tool_args={"area": "חיפה", "property_type": "דירה"}),
        Script("רשמתי. מה התקציב?", tool_args=ALL_BUT_NAME),
        Script("מעולה. מה התקציב?"),
    )
    brain = make(fake_openai)
    await say(brain, "דירה בחיפה")
    before = state(brain)
    await say(brain, "ארבעה חדרים, 2 מיליון, תוך שנה")
    assert brain.windows == [] and brain.lead.slots.budget_ils == 2_000_000
    brain.retract()
    assert state(brain) == before
    await say(brain, "ארבעה חדרים, אה, ובעצם שלושה")  # the merged turn
    sent = fake_openai.requests[2]["messages"]
    assert sent[-1] == {"role": "user", "content": "ארבעה חדרים, אה, ובעצם שלושה"}
    assert not any(m["content"] == "ארבעה חדרים, 2 מיליון, תוך שנה" for m in sent)
    assert not any(m["content"] == "רשמתי. מה התקציב?" for m in sent)


async def test_retract_of_a_cut_or_never_iterated_reply(fake_openai):
    fake_openai.push(Script("מעולה, דירה בחיפה. כמה חדרים צריך?", gate_after=5))
    brain = make(fake_openai)
    before = state(brain)
    agen = brain.respond(CallerTurn("דירה בחיפה", 0.9))
    await agen.__anext__()
    await agen.aclose()
    assert brain.lead.slots.area == "חיפה"
    brain.retract()
    assert state(brain) == before and brain.lead.slots.area is None
    brain.respond(CallerTurn("דירה בחולון", 0.9))  # never iterated
    brain.retract()
    assert state(brain) == before
    brain.retract()  # nothing left to take back
    assert state(brain) == before


async def test_retract_after_a_repeat_a_check_and_a_goodbye(fake_openai):
    fake_openai.push(Script("תודה רבה, יום נעים.", tool_args={"call_done": True}))
    brain = make(fake_openai)
    for text, confidence in (("מה?", 0.9), ("בחיפה", 0.4)):
        before = state(brain)
        await say(brain, text, confidence=confidence)
        brain.retract()
        assert state(brain) == before
    before = state(brain)
    await say(brain, "זהו, תודה")
    assert brain.finished
    brain.retract()
    assert state(brain) == before and not brain.finished


async def test_retract_of_a_turn_that_fell_back_tries_the_api_again(fake_openai):
    fake_openai.push(Script(status=500), Script("מעולה. איזה סוג נכס?"))
    brain = make(fake_openai)
    before = state(brain)
    await say(brain, "בחיפה")
    assert brain.fallback
    brain.retract()
    assert state(brain) == before and not brain.fallback
    assert await say(brain, "בחיפה, דירה") == "מעולה. איזה סוג נכס?"
    assert len(fake_openai.requests) == 2


async def test_a_retracted_reply_closed_afterwards_leaves_the_state_alone(fake_openai):
    fake_openai.push(Script("מעולה, דירה בחיפה. כמה חדרים צריך?", gate_after=5))
    brain = make(fake_openai)
    before = state(brain)
    agen = brain.respond(CallerTurn("דירה בחיפה", 0.9))
    await agen.__anext__()
    brain.retract()  # the session retracts first and closes the stream after
    await agen.aclose()
    assert state(brain) == before
