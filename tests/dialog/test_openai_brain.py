"""The OpenAI brain against our own fake server (real HTTP + SSE on loopback, real clock)."""
from __future__ import annotations

import trio
import pytest
from trio.testing import MockClock

from dialog_corpus import CALLER, NOW
from dialog import guardrails
from dialog.base import CLARIFY_HE, CallerTurn
from dialog.openai_brain import OpenAIBrain, OpenAIConfig, split_ready
from dialog.prompt import CUT_MARK, FEW_SHOT, INTERRUPTED_MARK, SYSTEM_PROMPT_HE
from fake_openai import Script
from telemetry import metrics

# mission.md item 4, copied by hand: the brain must send exactly this.
USER_PROMPT = (
    "את סוכנת נדל״ן של AgentLocator. המטרה: לאסוף במהירות אזור/סוג/תקציב/טווח/פרטי קשר.\n"
    "כל תשובה—1–2 משפטים קצרים (≤20 מילים) ושאלה אחת בסוף. אם לא שמעת/לא בטוחה—\n"
    "‘לא בטוח ששמעתי נכון, אפשר לחזור על זה?’. אין המצאות ואין הצעת דירות בלי נתונים.\n"
    "כשקוטעים אותך—עצרי מיד ובקשי מהלקוח להמשיך. כשסלוטים מלאים—הצעי תיאום פגישה:\n"
    "2–3 חלונות זמן קצרים, אשרי, וסכמי לשליחה בוואטסאפ."
)


def make(fake, language="he-IL", **kw) -> OpenAIBrain:
    config = OpenAIConfig(api_key="sk-test", model="fake-model", base_url=fake.base_url, **kw)
    return OpenAIBrain(config, language, CALLER, NOW)


async def say(brain, text, confidence=0.9, interrupted=False) -> list[str]:
    with trio.fail_after(10):
        out = [s async for s in brain.respond(CallerTurn(text, confidence, interrupted))]
    brain.heard(" ".join(out), True)
    return out


def violations(rule: str) -> float:
    return metrics.rule_violations_total.labels(rule=rule)._value.get()


def test_split_ready_keeps_decimals_and_waits_for_the_space():
    assert split_ready("עד 2.5 מיליון. מה") == (["עד 2.5 מיליון."], "מה")
    assert split_ready("מה התקציב?") == (["מה התקציב?"], "")
    assert split_ready("תודה.") == ([], "תודה.")


async def test_prompt_is_verbatim_with_three_few_shots_and_the_tool(fake_openai):
    fake_openai.push(Script("מעולה, תל אביב. איזה סוג נכס?"))
    brain = make(fake_openai)
    brain.heard(brain.opening(), True)
    await say(brain, "אני מחפש בתל אביב")
    req = fake_openai.requests[0]
    assert SYSTEM_PROMPT_HE == USER_PROMPT
    assert req["messages"][0] == {"role": "system", "content": USER_PROMPT}
    assert req["_path"].endswith("/chat/completions") and req["_auth"] == "Bearer sk-test"
    assert req["stream"] is True and req["model"] == "fake-model"
    assert [t["function"]["name"] for t in req["tools"]] == ["update_lead"]
    few = req["messages"][1 : 1 + len(FEW_SHOT)]
    assert few == FEW_SHOT
    # three exchanges: not heard -> clarify; interrupted -> invite; scheduling -> windows, confirm, summary
    assert few[1]["content"] == CLARIFY_HE
    assert few[3]["content"].startswith(INTERRUPTED_MARK) and few[4]["content"].endswith("?")
    assert "או" in few[6]["content"] and "לקבוע?" in few[8]["content"] and "וואטסאפ" in few[10]["content"]
    assert req["messages"][-1] == {"role": "user", "content": "אני מחפש בתל אביב"}


async def test_first_sentence_is_yielded_before_the_model_finishes(fake_openai):
    # The server holds the rest of the reply until the test has the first sentence.
    fake_openai.push(Script("מעולה, דירה בתל אביב. מה התקציב בערך?", gate_after=4))
    brain = make(fake_openai)
    with trio.fail_after(5):
        agen = brain.respond(CallerTurn("דירה בתל אביב", 0.9))
        first = await agen.__anext__()
        assert first == "מעולה, דירה בתל אביב."
        fake_openai.gate.set()
        rest = [s async for s in agen]
    assert rest == ["מה התקציב בערך?"]


async def test_slots_come_from_the_tool_call_not_the_spoken_text(fake_openai):
    fake_openai.push(Script(
        "רשמתי, חיפה. מה התקציב?",  # the spoken text names Haifa; the tool says Ramat Gan
        tool_args={"area": "רמת גן", "property_type": "דירה", "rooms": 4, "budget_ils": 1800000},
    ))
    brain = make(fake_openai)
    await say(brain, "דירת ארבעה חדרים ברמת גן עד מיליון ושמונה מאות")
    s = brain.lead.slots
    assert (s.area, s.property_type, s.rooms, s.budget_ils) == ("רמת גן", "דירה", 4.0, 1_800_000)


def corrections(slot: str) -> float:
    return metrics.brain_tool_corrections_total.labels(slot=slot)._value.get()


async def test_the_callers_numbers_overrule_the_models_reading_of_them(fake_openai):
    before = corrections("budget_ils"), corrections("rooms")
    fake_openai.push(
        Script("מה התקציב בערך?", tool_args={"area": "חולון"}),
        # "מיליון שמונה" is 1.8 million; the model heard one million
        Script("רשמתי. תוך כמה זמן?", tool_args={"budget_ils": 1000000, "area": "חולון"}),
    )
    brain = make(fake_openai)
    brain.heard(brain.opening(), True)
    await say(brain, "בחולון, שלוש וחצי חדרים")  # the model forgot the rooms
    assert brain.lead.slots.rooms == 3.5
    assert brain.expecting == "budget_ils"
    await say(brain, "מיליון שמונה")
    s = brain.lead.slots
    assert (s.area, s.budget_ils) == ("חולון", 1_800_000)
    assert (corrections("budget_ils"), corrections("rooms")) == (before[0] + 1, before[1] + 1)
    assert brain.expecting == "timeframe"


async def test_deal_from_the_tool_and_an_unclear_amount_resolved_by_it(fake_openai):
    fake_openai.push(
        Script("מה התקציב לחודש, בערך?", tool_args={"area": "חולון", "property_type": "דירה", "deal": "rent"}),
        Script("רשמתי. תוך כמה זמן?", tool_args={"budget_ils": 8000}),
        Script("לקנייה או לשכירות?"),  # a second caller, unsure: the model asks
        Script("רשמתי. תוך כמה זמן?", tool_args={"deal": "buy"}),  # ...and forgets the amount
    )
    brain = make(fake_openai)
    await say(brain, "מחפש לשכור דירה בחולון")
    await say(brain, "שמונה")
    s = brain.lead.slots
    assert (s.deal, s.budget_ils) == ("rent", 8000)
    other = make(fake_openai)
    other.expecting = "budget_ils"
    await say(other, "שמונה")
    assert other.lead.slots.budget_ils is None and other.expecting == "deal"
    await say(other, "לקנות")
    assert (other.lead.slots.deal, other.lead.slots.budget_ils) == ("buy", 8_000_000)
    tools = fake_openai.requests[0]["tools"][0]["function"]["parameters"]["properties"]
    assert tools["deal"]["enum"] == ["buy", "rent"] and "לחודש" in tools["budget_ils"]["description"]


async def test_malformed_tool_arguments_are_counted_and_ignored(fake_openai):
    before = violations("bad_tool_call")
    fake_openai.push(Script("מה התקציב?", tool_fragments=['{"area": "חולון", ', "oops"]))
    brain = make(fake_openai)
    await say(brain, "חולון")
    assert brain.lead.slots.area is None
    assert violations("bad_tool_call") == before + 1


async def test_two_questions_are_trimmed_to_one(fake_openai):
    before = violations("too_many_sentences")
    fake_openai.push(Script("באיזה אזור? ומה התקציב?"))
    brain = make(fake_openai)
    out = await say(brain, "שלום")
    assert out == ["באיזה אזור?"]
    assert violations("too_many_sentences") == before + 1


async def test_a_reply_without_a_question_gets_the_next_slot_question(fake_openai):
    fake_openai.push(Script("מעולה, רשמתי.", tool_args={"area": "תל אביב"}))
    brain = make(fake_openai)
    out = await say(brain, "תל אביב")
    assert out == ["מעולה, רשמתי.", "איזה סוג נכס מחפשים, ובכמה חדרים?"]
    assert guardrails.check(" ".join(out)) == []


async def test_listing_is_regenerated_once(fake_openai):
    fake_openai.push(
        Script("יש לנו דירה מדהימה בדיזנגוף ב-2 מיליון. רוצה לראות?"),
        Script("את הנכסים נציג בפגישה. מה התקציב?"),
    )
    brain = make(fake_openai)
    out = await say(brain, "מה יש לכם?")
    assert out == ["את הנכסים נציג בפגישה.", "מה התקציב?"]
    assert len(fake_openai.requests) == 2
    assert "בלי זה" in fake_openai.requests[1]["messages"][-1]["content"]


async def test_listing_twice_falls_back_to_a_safe_line(fake_openai):
    bad = Script("we have an apartment listed at 3 million. Want it?")
    fake_openai.push(bad, bad)
    brain = make(fake_openai, language="en-US")
    out = await say(brain, "what do you have?")
    assert len(fake_openai.requests) == 2
    assert out == ["Which area are you looking in?"]


async def test_low_confidence_and_silence_get_the_clarify_line_without_a_request(fake_openai):
    brain = make(fake_openai)
    assert await say(brain, "מממ תל", confidence=0.3) == [CLARIFY_HE]
    assert await say(brain, "  ", confidence=0.9) == [CLARIFY_HE]
    assert fake_openai.requests == []


async def test_history_holds_only_what_the_caller_heard(fake_openai):
    fake_openai.push(
        Script("מעולה, דירה בתל אביב. מה התקציב בערך?"),
        Script("סליחה, אני מקשיבה. מה רצית להגיד?"),
    )
    brain = make(fake_openai)
    with trio.fail_after(5):
        out = [s async for s in brain.respond(CallerTurn("דירה בתל אביב", 0.9))]
    assert len(out) == 2
    brain.heard("מעולה, דירה בתל", heard_fully=False)  # the caller barged in here
    await say(brain, "רגע, בעצם", interrupted=True)
    history = fake_openai.requests[1]["messages"]
    assert {"role": "assistant", "content": "מעולה, דירה בתל" + CUT_MARK} in history
    assert not any("מה התקציב" in m["content"] for m in history if m["role"] == "assistant" and m is not history[0])
    assert history[-1] == {"role": "user", "content": INTERRUPTED_MARK + "רגע, בעצם"}


async def test_holding_floor_after_an_interruption_invites_the_caller_on(fake_openai):
    brain = make(fake_openai)
    assert await say(brain, "רגע", interrupted=True) == ["סליחה, אני מקשיבה. מה רצית להגיד?"]
    assert fake_openai.requests == []


@pytest.fixture
def idle_jump_clock() -> MockClock:
    """Virtual time that moves only when every task has been idle for 20 ms of real time: a
    cold start (imports, the first connection) costs no virtual time, so a 0.2 s deadline
    holds however slow the box is, while loopback I/O still completes before any jump."""
    return MockClock(autojump_threshold=0.02)


async def test_first_sentence_deadline_says_a_holding_line_then_continues(idle_jump_clock, fake_openai):
    fake_openai.push(Script("מה התקציב?", first_delay=1.0), Script("מעולה. מה התקציב בערך?"))
    brain = make(fake_openai, first_sentence_deadline_s=0.2)
    start = trio.current_time()
    with trio.fail_after(5):
        agen = brain.respond(CallerTurn("דירה בחיפה", 0.9))
        first = await agen.__anext__()
        first_at = trio.current_time() - start
        rest = [s async for s in agen]
    assert first == "רק רגע."
    assert 0.15 < first_at < 0.9
    assert rest == ["מעולה.", "מה התקציב בערך?"]
    assert len(fake_openai.requests) == 2
    assert not brain.fallback


@pytest.mark.parametrize("script", [Script(status=500), Script(status=429), Script(raw_body=b"data: {not json\n\n")])
async def test_api_error_hands_the_call_to_the_rules_brain(fake_openai, script):
    errors = metrics.provider_errors_total.labels(provider="openai")._value.get()
    fake_openai.push(script)
    brain = make(fake_openai)
    brain.heard(brain.opening(), True)
    out = await say(brain, "אני מחפש דירה בתל אביב")
    assert brain.fallback
    assert brain.lead.slots.area == "תל אביב"  # the rules brain took this turn
    assert out[-1].endswith("?")
    assert metrics.provider_errors_total.labels(provider="openai")._value.get() == errors + 1
    n = len(fake_openai.requests)
    await say(brain, "4 חדרים")
    assert len(fake_openai.requests) == n  # the rest of the call stays offline
    assert brain.lead.slots.rooms == 4


async def test_stall_after_the_holding_line_falls_back(fake_openai):
    fake_openai.push(Script("מה?", first_delay=2.0), Script("מה?", first_delay=2.0))
    brain = make(fake_openai, first_sentence_deadline_s=0.1, turn_timeout_s=0.3)
    out = await say(brain, "דירה ברחובות")
    assert out[0] == "רק רגע."
    assert brain.fallback and out[-1].endswith("?")


async def test_unreachable_server_falls_back():
    config = OpenAIConfig(api_key="sk", model="m", base_url="http://127.0.0.1:9/v1", connect_timeout_s=0.5)
    brain = OpenAIBrain(config, "en-US", CALLER, NOW)
    out = await say(brain, "an apartment in Haifa")
    assert brain.fallback and brain.lead.slots.area == "Haifa" and out[-1].endswith("?")


async def test_meeting_is_booked_through_the_tool_and_summarised(fake_openai):
    fake_openai.push(
        Script("תודה דנה. אפשר להיפגש מחר בעשר או ביום שישי בתשע?", tool_args={
            "area": "תל אביב", "property_type": "דירה", "rooms": 3, "budget_ils": 2000000,
            "timeframe": "תוך חודשיים", "name": "דנה", "phone_confirmed": True}),
        Script("אז מחר בעשר, לקבוע?", tool_args={"meeting_window": 0}),
        Script("קבענו מחר בעשר. אשלח סיכום בוואטסאפ, יש עוד שאלה?", tool_args={"meeting_confirmed": True}),
        Script("תודה רבה, נתראה מחר!", tool_args={"call_done": True}),
    )
    brain = make(fake_openai)
    await say(brain, "דירת 3 חדרים בתל אביב, 2 מיליון, תוך חודשיים, דנה, והמספר נכון")
    assert brain.lead.status == "qualified" and len(brain.windows) == 3
    await say(brain, "מחר בעשר")
    assert "חלונות פנויים" in fake_openai.requests[1]["messages"][12]["content"]
    await say(brain, "כן")
    assert brain.lead.status == "meeting_booked" and brain.lead.meeting_at == brain.windows[0]
    assert not brain.finished
    await say(brain, "לא, תודה")
    assert brain.finished
    assert "פגישה:" in brain.summary() and "דנה" in brain.summary()
    await brain.aclose()


async def test_tool_call_without_text_gets_the_next_question(fake_openai):
    fake_openai.push(Script("", tool_args={"area": "חיפה", "property_type": "דירה", "rooms": 3}))
    brain = make(fake_openai)
    out = await say(brain, "דירת 3 חדרים בחיפה")
    assert brain.lead.slots.area == "חיפה"
    assert out == ["מה התקציב בערך?"]


async def test_not_interested_ends_the_call_politely(fake_openai):
    fake_openai.push(Script("", tool_args={"not_interested": True}))
    brain = make(fake_openai)
    out = await say(brain, "לא מעוניין")
    assert out == ["בסדר גמור, תודה על הזמן ויום נעים."]
    assert brain.finished and brain.lead.status == "lost"
    assert brain._client is None  # closed with the call


async def test_english_calls_are_told_to_answer_in_english(fake_openai):
    fake_openai.push(Script("Great. What's your budget?"))
    brain = make(fake_openai, language="en-US")
    assert await say(brain, "a flat in Haifa") == ["Great.", "What's your budget?"]
    note = fake_openai.requests[0]["messages"][1 + len(FEW_SHOT)]
    assert note["role"] == "system" and "reply in English" in note["content"]
    assert "מסתיים ב-4567" in note["content"]  # confirm the caller ID, don't ask for digits
    await brain.aclose()


async def test_a_barge_in_closes_the_stream_and_the_next_turn_works(fake_openai):
    fake_openai.push(Script("מעולה, דירה בתל אביב. מה התקציב בערך?", gate_after=4), Script("סליחה, מה רצית להגיד?"))
    brain = make(fake_openai)
    with trio.fail_after(5):
        agen = brain.respond(CallerTurn("דירה בתל אביב", 0.9))
        assert await agen.__anext__() == "מעולה, דירה בתל אביב."
        await agen.aclose()  # the session stops the turn: the caller talked over the agent
    brain.heard("מעולה, דירה", heard_fully=False)
    assert await say(brain, "רגע, שאלה", interrupted=True) == ["סליחה, מה רצית להגיד?"]
    assert len(fake_openai.requests) == 2 and not brain.fallback
    await brain.aclose()


def test_reasoning_models_get_their_own_sampling_arguments():
    from dialog.openai_brain import sampling_args

    assert set(sampling_args(OpenAIConfig("k", "gpt-4o-mini"))) == {"temperature", "max_tokens"}
    assert set(sampling_args(OpenAIConfig("k", "o4-mini"))) == {"max_completion_tokens"}
    assert set(sampling_args(OpenAIConfig("k", "gpt-5-mini"))) == {"max_completion_tokens"}


async def test_connection_dropped_mid_reply_finishes_the_turn_offline(fake_openai):
    fake_openai.push(Script("מעולה, דירה בחיפה. מה התקציב בערך?", hangup_after=5))
    brain = make(fake_openai)
    out = await say(brain, "דירה בחיפה")
    assert out[0] == "מעולה, דירה בחיפה."
    assert brain.fallback and len(out) == 2
    assert out[-1] == "כמה חדרים צריך?" or out[-1] == "מה התקציב בערך?"
    assert brain.lead.slots.area == "חיפה"  # the offline brain took the turn's facts
    assert guardrails.check(" ".join(out)) == []
