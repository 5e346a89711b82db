"""The offline brain around the new turn machine: "sorry, what?", a value checked back at low
confidence, a goodbye talked over, and retract() of a reply the caller never heard.

Replies are judged here by hand (one "?", at the end, at most 20 words), not by guardrails."""
from __future__ import annotations

import copy

import pytest
import trio
from hypothesis import HealthCheck, given, settings, strategies as st

from dialog_corpus import CALLER, NOW
from dialog.base import CLARIFY_EN, CLARIFY_HE, CallerTurn
from dialog.phrases import EN, HE
from dialog.rules import MAX_TURNS, RuleBrain


def new(lang: str = "he-IL") -> RuleBrain:
    brain = RuleBrain(lang, CALLER, NOW)
    brain.heard(brain.opening(), True)
    return brain


async def say(brain: RuleBrain, text: str, confidence: float = 0.9, interrupted: bool = False, heard: bool = True) -> str:
    out = [s async for s in brain.respond(CallerTurn(text, confidence, interrupted))]
    reply = " ".join(out)
    if heard:
        brain.heard(reply, True)
    return reply


def one_question(reply: str) -> bool:
    return reply.count("?") == 1 and reply.endswith("?") and len(reply.split()) <= 20


def state(brain: RuleBrain) -> tuple:
    """Everything the dialog holds, copied: what retract() must bring back."""
    d = brain.dialog
    return copy.deepcopy(({k: v for k, v in vars(d).items() if k not in ("say", "lead")}, brain.lead))


# -- "sorry, what?" ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang, ask, question", [
    ("he-IL", "מה?", "באיזה אזור מחפשים נכס?"),
    ("he-IL", "סליחה, לא שמעתי", "באיזה אזור מחפשים נכס?"),
    ("en-US", "sorry, what?", "Which area are you looking in?"),
    ("en-US", "come again?", "Which area are you looking in?"),
])
async def test_what_before_any_answer_repeats_the_opening_question(lang, ask, question):
    brain = new(lang)
    before = copy.deepcopy(brain.lead)
    assert await say(brain, ask) == question
    assert brain.lead == before


@pytest.mark.parametrize("lang, first, ask, question, answer, slot, value", [
    ("he-IL", "דירה בתל אביב", "מה אמרת?", "כמה חדרים צריך?", "4", "rooms", None),
    ("he-IL", "דירת 3 חדרים בחיפה", "סליחה?", "מה התקציב בערך?", "שתיים וחצי", "budget_ils", 2_500_000),
    ("en-US", "an apartment in Haifa", "what?", "How many rooms do you need?", "three rooms", "rooms", 3),
    ("en-US", "a 3 room flat in Holon", "I didn't catch that", "What's your budget, roughly?", "two million", "budget_ils", 2_000_000),
])
async def test_what_repeats_the_last_question_word_for_word(lang, first, ask, question, answer, slot, value):
    brain = new(lang)
    reply = await say(brain, first)
    assert reply.endswith(question)
    before, lead_before = copy.deepcopy(brain.lead), state(brain)[0]["asks"]
    again = await say(brain, ask)
    assert again == question  # the question alone: not the ack, not the clarify line, not the next question
    assert brain.lead == before and brain.dialog.asks == lead_before
    await say(brain, answer)  # and it is still the question being answered
    if value is not None:
        assert getattr(brain.lead.slots, slot) == value


async def test_what_after_a_cut_reply_repeats_the_question_it_asked():
    brain = new("he-IL")
    out = [s async for s in brain.respond(CallerTurn("דירה בתל אביב", 0.9))]
    assert out[-1] == "כמה חדרים צריך?"
    brain.heard("מצוין, דירה", heard_fully=False)  # cut before the question
    assert await say(brain, "מה?", interrupted=True) == "כמה חדרים צריך?"


async def test_what_after_the_clarify_line_repeats_the_real_question():
    brain = new("en-US")
    await say(brain, "an apartment in Haifa")
    assert await say(brain, "mmm", confidence=0.1) == CLARIFY_EN
    assert await say(brain, "what?") == "How many rooms do you need?"


async def test_what_over_a_value_check_repeats_the_check_and_keeps_it():
    brain = new("he-IL")
    await say(brain, "דירת 4 חדרים בתל אביב")
    check = await say(brain, "שני מיליון", confidence=0.35)
    assert await say(brain, "מה?") == check
    await say(brain, "כן")
    assert brain.lead.slots.budget_ils == 2_000_000


# -- a value heard at low confidence ------------------------------------------------------------


@pytest.mark.parametrize("lang, first, text, check, slot, value, yes, next_q", [
    ("he-IL", "דירת 4 חדרים בתל אביב", "שני מיליון", "עד שני מיליון, נכון?", "budget_ils", 2_000_000, "כן",
     HE["q_timeframe"]),
    ("en-US", "a 4 room apartment in Tel Aviv", "two million", "Up to two million, right?", "budget_ils", 2_000_000,
     "yes", EN["q_timeframe"]),
    ("he-IL", None, "בחיפה", "בחיפה, נכון?", "area", "חיפה", "נכון", HE["q_property_type"]),
    ("en-US", None, "in Haifa", "In Haifa, right?", "area", "Haifa", "correct", EN["q_property_type"]),
    ("he-IL", "דירת 4 חדרים בחולון עד מיליון", "תוך חודשיים", "תוך חודשיים, נכון?", "timeframe", "תוך חודשיים", "כן",
     HE["q_name"]),
])
async def test_a_clear_value_at_low_confidence_is_checked_then_stored_on_yes(
    lang, first, text, check, slot, value, yes, next_q
):
    brain = new(lang)
    if first:
        await say(brain, first)
    asked = await say(brain, text, confidence=0.35)
    assert asked == check and one_question(asked)
    assert getattr(brain.lead.slots, slot) is None  # not stored yet
    reply = await say(brain, yes)
    assert getattr(brain.lead.slots, slot) == value
    assert reply.endswith(next_q) and one_question(reply)
    assert "נכון?" not in reply and "right?" not in reply


@pytest.mark.parametrize("lang, no, again", [("he-IL", "לא", HE["q_area"]), ("en-US", "no, that's wrong", EN["q_area"])])
async def test_a_no_drops_the_value_and_asks_the_slot_again(lang, no, again):
    brain = new(lang)
    await say(brain, "בחיפה" if lang == "he-IL" else "in Haifa", confidence=0.4)
    reply = await say(brain, no)
    assert brain.lead.slots.area is None
    assert reply.endswith(again) and one_question(reply)
    assert reply != (CLARIFY_HE if lang == "he-IL" else CLARIFY_EN)


@pytest.mark.parametrize("lang, heard, correction, value", [
    ("he-IL", "בחיפה", "לא, בחולון", "חולון"),
    ("en-US", "two million", "no, two and a half million", 2_500_000),
    ("he-IL", "שני מיליון", "שתיים וחצי", 2_500_000),  # a bare amount still reads as the budget asked about
])
async def test_a_correction_replaces_the_value(lang, heard, correction, value):
    brain = new(lang)
    slot = "area" if value == "חולון" else "budget_ils"
    if slot == "budget_ils":
        await say(brain, "דירת 4 חדרים בתל אביב" if lang == "he-IL" else "a 4 room apartment in Tel Aviv")
    await say(brain, heard, confidence=0.3)
    reply = await say(brain, correction)
    assert getattr(brain.lead.slots, slot) == value
    assert one_question(reply)


@pytest.mark.parametrize("lang, area, checked, moving_on, rooms", [
    ("he-IL", "בתל אביב", "דירה בחיפה", "תוך שלושה חודשים", None),
    ("en-US", "in Tel Aviv", "an apartment in Haifa", "within three months", None),
])
async def test_a_check_the_caller_lets_pass_stands(lang, area, checked, moving_on, rooms):
    """Asked "In Haifa, right?", the caller goes on to something else: like a person on the
    phone, the agent takes that as a yes (the value stands) and takes the new words too."""
    brain = new(lang)
    await say(brain, checked, confidence=0.3)
    assert brain.dialog.pending
    reply = await say(brain, moving_on)
    slots = brain.lead.slots
    assert slots.area in ("חיפה", "Haifa") and slots.property_type in ("דירה", "apartment")
    assert slots.timeframe is not None and brain.dialog.pending is None
    assert one_question(reply)


async def test_a_second_unsure_value_lets_the_first_check_stand():
    """The caller talks over the check with another value heard at low confidence: the first
    value stands, the new one is checked."""
    brain = new("en-US")
    await say(brain, "an apartment in Haifa", confidence=0.3)
    reply = await say(brain, "two million shekels", confidence=0.3, interrupted=True)
    assert brain.lead.slots.area == "Haifa" and brain.lead.slots.property_type == "apartment"
    assert brain.dialog.pending == {"budget_ils": 2_000_000, "deal": "buy"} and one_question(reply)  # a buyer's amount


@pytest.mark.parametrize("lang, text, confidence", [
    ("he-IL", "בחיפה", 0.1),  # too unsure even to check back
    ("he-IL", "אממ ה", 0.4),  # no value in it
    ("en-US", "in Haifa", 0.15),
    ("en-US", "uh the", 0.3),
])
async def test_very_low_confidence_or_no_value_is_the_clarify_line(lang, text, confidence):
    brain = new(lang)
    assert await say(brain, text, confidence=confidence) == (CLARIFY_HE if lang == "he-IL" else CLARIFY_EN)
    assert brain.dialog.pending is None and brain.lead.slots.area is None


async def test_a_name_at_low_confidence_is_checked_and_a_yes_is_not_a_name():
    brain = new("he-IL")
    for text in ("דירת 4 חדרים בתל אביב", "2 מיליון", "תוך שנה"):
        await say(brain, text)
    assert await say(brain, "רון", confidence=0.4) == "רון, נכון?"
    await say(brain, "בדיוק")
    assert brain.lead.slots.name == "רון"


async def test_the_check_of_an_odd_amount_still_passes_the_rules():
    brain = new("en-US")
    await say(brain, "a 4 room apartment in Tel Aviv")
    reply = await say(brain, "1,234,000 shekels", confidence=0.4)
    assert reply == "Up to 1.234 million shekels, right?"
    assert brain.dialog.violations == []


# -- the goodbye, talked over -------------------------------------------------------------------

HE_CALL = ["דירת 4 חדרים בתל אביב", "2 מיליון", "תוך שנה", "קוראים לי דנה", "כן", "מחר בעשר", "כן"]
EN_CALL = ["a 4 room apartment in Tel Aviv", "two million", "within a year", "my name is Dana", "yes", "tomorrow", "yes"]


async def booked(lang: str) -> RuleBrain:
    brain = new(lang)
    for text in HE_CALL if lang == "he-IL" else EN_CALL:
        await say(brain, text)
    assert brain.lead.status == "meeting_booked"
    return brain


@pytest.mark.parametrize("lang, bye, change, answer, slot, value, thanks, again", [
    ("he-IL", "לא, תודה", "רגע, בעצם עד שלושה מיליון", "עדכנתי. יש עוד משהו?", "budget_ils", 3_000_000, "תודה, ביי",
     "שוב תודה, יום נעים."),
    ("en-US", "no, that's all", "wait, actually make it three million", "Updated. Anything else?", "budget_ils",
     3_000_000, "thanks, bye", "Thanks again, have a great day."),
])
async def test_talking_over_the_goodbye_reopens_the_call(lang, bye, change, answer, slot, value, thanks, again):
    brain = await booked(lang)
    goodbye = await say(brain, bye, heard=False)
    assert brain.finished and "?" not in goodbye
    brain.heard(goodbye.split()[0], heard_fully=False)  # cut: the caller talked over it
    reply = await say(brain, change, interrupted=True)
    assert not brain.finished
    assert getattr(brain.lead.slots, slot) == value
    assert reply == answer and one_question(reply)
    assert brain.lead.status == "meeting_booked"
    final = await say(brain, "לא" if lang == "he-IL" else "no")
    assert brain.finished and final == goodbye  # the goodbye again, with the meeting in it
    assert await say(brain, thanks) == again and brain.finished  # only thanks: a short goodbye
    assert await say(brain, "מה?" if lang == "he-IL" else "what?") == again and brain.finished


@pytest.mark.parametrize("lang, refusal, reopen, area", [
    ("he-IL", "לא מעוניין", "רגע, בעצם כן, אני מחפש דירה בחיפה", "חיפה"),
    ("en-US", "I'm not interested", "wait, actually I am, a flat in Haifa", "Haifa"),
])
async def test_a_lost_lead_that_talks_over_the_goodbye_is_back(lang, refusal, reopen, area):
    brain = new(lang)
    await say(brain, refusal)
    assert brain.finished and brain.lead.status == "lost"
    reply = await say(brain, reopen, interrupted=True)
    assert not brain.finished and brain.lead.status == "new" and brain.lead.slots.area == area
    assert one_question(reply)


async def test_right_after_the_goodbye_an_acknowledgement_is_a_short_goodbye():
    brain = await booked("en-US")
    await say(brain, "that's all")
    assert await say(brain, "okay") == "Thanks again, have a great day." and brain.finished


async def test_a_goodbye_at_the_turn_cap_still_takes_the_callers_words():
    brain = new("he-IL")
    for _ in range(MAX_TURNS):
        await say(brain, "ממ", confidence=0.1)
    assert brain.finished
    await say(brain, "רגע, בחיפה")
    assert brain.lead.slots.area == "חיפה" and brain.finished  # the cap still holds


# -- retract ------------------------------------------------------------------------------------


async def test_retract_puts_everything_back():
    brain = new("he-IL")
    await say(brain, "דירה בתל אביב")
    before = state(brain)
    await say(brain, "4 חדרים, עד 2 מיליון")
    assert brain.lead.slots.rooms == 4 and state(brain) != before
    brain.retract()
    assert state(brain) == before
    brain.retract()  # nothing more to take back
    assert state(brain) == before
    reply = await say(brain, "4 חדרים, עד 2 מיליון, תוך שנה")  # the merged turn
    assert brain.lead.slots.timeframe == "תוך שנה" and one_question(reply)


async def test_retract_of_a_reply_closed_mid_stream_or_never_iterated():
    brain = new("en-US")
    await say(brain, "an apartment in Haifa")
    before = state(brain)
    agen = brain.respond(CallerTurn("three rooms, two million", 0.9))
    await agen.__anext__()
    await agen.aclose()  # a barge-in
    brain.retract()
    assert state(brain) == before
    brain.respond(CallerTurn("four rooms", 0.9))  # never iterated
    brain.retract()
    assert state(brain) == before


async def test_retract_of_a_goodbye_and_of_a_value_check():
    brain = await booked("he-IL")
    before = state(brain)
    await say(brain, "לא, תודה")
    assert brain.finished
    brain.retract()
    assert not brain.finished and state(brain) == before
    fresh = new("he-IL")
    await say(fresh, "בחיפה", confidence=0.4)
    assert fresh.dialog.pending
    fresh.retract()
    assert fresh.dialog.pending is None and fresh.dialog.question == "באיזה אזור מחפשים נכס?"


async def test_retract_keeps_the_lead_object():
    brain = new("he-IL")
    lead = brain.lead
    await say(brain, "דירה בחיפה")
    brain.retract()
    assert brain.lead is lead and brain.dialog.lead is lead and lead.slots.area is None


def test_retract_before_any_reply_is_a_no_op():
    brain = new("en-US")
    before = state(brain)
    brain.retract()
    assert state(brain) == before


# -- whatever the caller does, the replies keep the rules ----------------------------------------

FRAGMENTS = [
    "דירה", "בתל אביב", "4 חדרים", "מיליון וחצי", "תוך חודשיים", "קוראים לי דנה", "כן", "לא", "מחר בעשר", "מה?",
    "לא שמעתי", "רגע", "תודה", "ביי", "לא מעוניין", "Tel Aviv", "two million", "yes", "no", "what?", "wait", "bye",
    "thanks", "my name is Tom", "tomorrow", "okay",
]
actions = st.lists(
    st.one_of(
        st.just("retract"),
        st.tuples(st.lists(st.sampled_from(FRAGMENTS), min_size=0, max_size=3).map(" ".join), st.floats(0, 1),
                  st.booleans(), st.booleans()),
    ),
    min_size=1, max_size=45,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["he-IL", "en-US"]), actions)
def test_replies_keep_the_rules_through_repeats_checks_reopens_and_retracts(lang, script):
    brain = RuleBrain(lang, CALLER, NOW)
    last = brain.opening()

    async def one(turn):
        return [s async for s in brain.respond(turn)]

    for action in script:  # the call goes on past the goodbye: the caller keeps talking
        if action == "retract":
            brain.retract()
            continue
        text, confidence, interrupted, heard_fully = action
        brain.heard(last if heard_fully else " ".join(last.split()[:2]), heard_fully)
        last = " ".join(trio.run(one, CallerTurn(text, confidence, interrupted)))
        assert last and len(last.split()) <= 20, last
        if brain.finished:
            assert "?" not in last, last
        else:
            assert one_question(last), last
    assert brain.dialog.violations == []
