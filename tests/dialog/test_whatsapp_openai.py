"""The OpenAI brain in text mode (WhatsApp) against our fake OpenAI server (real HTTP + SSE)."""
from __future__ import annotations

import datetime as dt

from dialog.openai_brain import OpenAIConfig
from dialog.prompt import SYSTEM_PROMPT_HE
from dialog.schedule import TZ
from dialog.whatsapp import Thread, decide
from dialog.whatsapp_openai import TOOL_NAME, OpenAIText
from fake_openai import Script

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ)  # Tuesday
MEETING = dt.datetime(2026, 12, 1, 16, 0, tzinfo=TZ)


def make(fake) -> OpenAIText:  # type: ignore[no-untyped-def]
    return OpenAIText(OpenAIConfig(api_key="sk-test", model="fake-model", base_url=fake.base_url, turn_timeout_s=5))


async def test_a_wish_the_rules_miss_becomes_an_offer_from_the_schedule(fake_openai) -> None:
    text = "יש מצב שנעשה את זה קצת יותר מאוחר השבוע?"
    thread = Thread(meeting_at=MEETING, name="דנה")
    assert decide(text, thread, NOW).action == "handoff"  # the rules cannot read it
    fake_openai.push(Script("", tool_args={"action": "reschedule"}, tool_name=TOOL_NAME))
    history = [{"direction": "out", "body": "תודה דנה! נתראה היום ב-16:00."}]
    decision = await make(fake_openai).read(text, thread, NOW, history)
    assert decision is not None and decision.action == "offer" and decision.needs_person is None
    # the windows are the schedule's, the line the rules' (no model words)
    assert len(decision.thread.offered) == 3 and MEETING not in decision.thread.offered
    assert decision.reply.startswith("אין בעיה. מתאים ") and decision.reply.endswith("?")
    req = fake_openai.requests[0]
    assert req["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT_HE}
    assert "וואטסאפ" in req["messages"][1]["content"] and "פגישה קבועה: היום (01.12) ב-16:00" in req["messages"][1]["content"]
    assert req["messages"][2] == {"role": "assistant", "content": history[0]["body"]}
    assert req["messages"][-1] == {"role": "user", "content": text}
    assert [t["function"]["name"] for t in req["tools"]] == [TOOL_NAME] and req["stream"] is True


async def test_choose_by_index_then_confirm(fake_openai) -> None:
    offered = (dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ), dt.datetime(2026, 12, 3, 13, 0, tzinfo=TZ))
    thread = Thread(meeting_at=MEETING, phase="offer", offered=offered, misses=1)
    fake_openai.push(Script("", tool_args={"action": "choose", "window": 1}, tool_name=TOOL_NAME),
                     Script("", tool_args={"action": "confirm"}, tool_name=TOOL_NAME))
    brain = make(fake_openai)
    chose = await brain.read("זה עם החמישי נשמע לי טוב יותר", thread, NOW)
    assert chose.action == "choose" and chose.thread.chosen == offered[1]
    booked = await brain.read("יאללה סגרנו על זה", chose.thread, NOW)
    assert booked.action == "book" and booked.meeting_at == offered[1] and booked.final


async def test_a_handoff_may_use_the_models_line_only_if_it_keeps_the_rules(fake_openai) -> None:
    thread = Thread(meeting_at=MEETING)
    fake_openai.push(Script("שאלה טובה, נציג יחזור אליך עם פרטי החניה.", tool_args={"action": "handoff"},
                            tool_name=TOOL_NAME),
                     Script("יש לנו דירה מדהימה ביפו במחיר של 2,000,000 ₪ בלבד. רוצה לראות? מתי נוח?",
                            tool_args={"action": "handoff"}, tool_name=TOOL_NAME))
    brain = make(fake_openai)
    ok = await brain.read("יש חניה ליד המשרד?", thread, NOW)
    assert ok.action == "handoff" and ok.reply == "שאלה טובה, נציג יחזור אליך עם פרטי החניה."
    assert ok.needs_person == "openai: handoff"
    listing = await brain.read("יש לכם משהו ביפו?", thread, NOW)
    assert listing.reply == "תודה, נציג שלנו יחזור אליך כאן בהקדם."  # the rules' line, not the listing


async def test_api_failure_or_a_useless_answer_leaves_the_rules_handoff(fake_openai) -> None:
    thread = Thread(meeting_at=MEETING)
    fake_openai.push(Script(status=500), Script("סתם טקסט בלי כלי"),
                     Script("", tool_args={"action": "cancel"}, tool_name=TOOL_NAME))
    brain = make(fake_openai)
    assert await brain.read("מה קורה?", thread, NOW) is None
    assert await brain.read("מה קורה?", thread, NOW) is None
    # an action that does not fit (cancel without a meeting) is a handoff, not a guess
    no_meeting = await brain.read("לא משנה", Thread(), NOW)
    assert no_meeting.action == "handoff" and no_meeting.needs_person.startswith("openai: cancel")
