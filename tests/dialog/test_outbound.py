"""A call we placed (dialog.outbound): the opening, "is this a good time?", callbacks, and no
slot asked twice — in the rule brain and in the OpenAI brain (against the fake server)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import trio

from dialog.base import CallerTurn, LeadState, Slots
from dialog.openai_brain import OUTBOUND_NOTE, OpenAIBrain, OpenAIConfig
from dialog.outbound import OutboundContext, callback_time, not_now, opening
from dialog.rules import RuleBrain, RuleDialog
from fake_openai import Script
from leads.hours import CallingHours
from leads.journal import _decode, _encode

TZ = ZoneInfo("Asia/Jerusalem")
NOW = dt.datetime(2026, 12, 1, 14, 5, tzinfo=TZ)  # a Tuesday afternoon
PHONE = "+972501234567"
DANA = OutboundContext(phone=PHONE, name="דנה כהן", area="רמת גן", property_type="דירה", hours=CallingHours.parse())


def test_the_opening_names_the_lead_and_what_they_asked_for() -> None:
    assert opening(DANA, True) == "היי דנה, מדברת נועה מ-AgentLocator, השארת פרטים על דירה ברמת גן — זה זמן טוב?"
    rooms = OutboundContext(phone=PHONE, name="Dana", area="Haifa", property_type="apartment", rooms=4)
    assert opening(rooms, False) == ("Hi Dana, this is Noa from AgentLocator, you left your details about "
                                     "a 4-room apartment in Haifa — is this a good time?")
    assert opening(OutboundContext(phone=PHONE), True) == "היי, מדברת נועה מ-AgentLocator, השארת פרטים על נכס — זה זמן טוב?"
    assert "ביקשת שנחזור" in opening(OutboundContext(phone=PHONE, name="דנה", reason="callback"), True)


@pytest.mark.parametrize("text, expected", [
    ("תתקשרי בשש", dt.datetime(2026, 12, 1, 18, 0, tzinfo=TZ)),
    ("לא זמן טוב, מחר בעשר", dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ)),
    ("בעוד שעה", dt.datetime(2026, 12, 1, 15, 5, tzinfo=TZ)),
    ("בעוד חצי שעה", dt.datetime(2026, 12, 1, 14, 35, tzinfo=TZ)),
    ("ביום ראשון בבוקר", dt.datetime(2026, 12, 6, 10, 0, tzinfo=TZ)),
    ("בשמונה בבוקר", dt.datetime(2026, 12, 2, 8, 0, tzinfo=TZ)),  # 08:00 today has passed
    ("בערב", dt.datetime(2026, 12, 1, 18, 0, tzinfo=TZ)),
    ("call me at 6 pm", dt.datetime(2026, 12, 1, 18, 0, tzinfo=TZ)),
    ("tomorrow at 11:30", dt.datetime(2026, 12, 2, 11, 30, tzinfo=TZ)),
    ("in 20 minutes", dt.datetime(2026, 12, 1, 14, 25, tzinfo=TZ)),
    ("לא עכשיו", None),
    ("כן", None),
])
def test_callback_time(text: str, expected: dt.datetime | None) -> None:
    assert callback_time(text, NOW) == expected


def test_not_now() -> None:
    for text in ("לא זמן טוב", "אני נוהג", "אני בישיבה", "תחזרי אליי", "I'm driving", "bad time", "call me back later"):
        assert not_now(text), text
    for text in ("כן", "בטח, דברי", "yes sure", "זמן טוב"):
        assert not not_now(text), text


def dialog(ctx: OutboundContext = DANA) -> RuleDialog:
    d = RuleDialog("he-IL", PHONE, NOW)
    d.call_out(ctx)
    d.heard(d.opening(), True)
    return d


def test_yes_goes_on_from_the_slots_it_has() -> None:
    d = dialog()
    reply = d.reply(CallerTurn("כן, בטח", 0.95))
    assert reply.text == "מעולה. מה התקציב בערך?" and not reply.final  # not the area, not the name
    s = d.lead.slots
    assert (s.name, s.area, s.property_type, s.phone, s.phone_confirmed) == ("דנה כהן", "רמת גן", "דירה", PHONE, True)
    said = [reply.text]
    for words in ("עד שני מיליון", "תוך חצי שנה"):
        r = d.reply(CallerTurn(words, 0.95))
        d.heard(r.text, True)
        said.append(r.text)
    assert "אפשר להיפגש" in said[-1]
    for asked in ("באיזה אזור", "איזה סוג נכס", "איך קוראים לך", "לאיזה מספר", "המספר שמסתיים"):
        assert not any(asked in line for line in said), (asked, said)


def test_not_a_good_time_with_a_time_is_a_callback() -> None:
    d = dialog()
    reply = d.reply(CallerTurn("לא זמן טוב, תתקשרי בשש", 0.95))
    assert reply.final and reply.text == "בסדר גמור, נחזור היום בשש. יום נעים."
    assert d.lead.callback_at == dt.datetime(2026, 12, 1, 18, 0, tzinfo=TZ)


def test_not_a_good_time_then_when() -> None:
    d = dialog()
    reply = d.reply(CallerTurn("אני באמצע משהו", 0.95))
    assert reply.text == "אין בעיה. מתי נוח שנחזור?" and not reply.final
    reply = d.reply(CallerTurn("בעוד חצי שעה", 0.95))
    assert reply.final and reply.text == "בסדר גמור, נחזור בעוד חצי שעה. יום נעים."
    assert d.lead.callback_at == dt.datetime(2026, 12, 1, 14, 35, tzinfo=TZ)


def test_a_callback_outside_calling_hours_is_said_at_the_next_opening() -> None:
    d = dialog()
    reply = d.reply(CallerTurn("לא עכשיו, תתקשרי בעשר בלילה", 0.95))
    assert d.lead.callback_at == dt.datetime(2026, 12, 2, 9, 0, tzinfo=TZ)
    assert reply.text == "בסדר גמור, נחזור מחר בתשע. יום נעים."


def test_vague_later_is_a_couple_of_hours() -> None:
    d = dialog()
    d.reply(CallerTurn("לא נוח לי עכשיו", 0.95))
    reply = d.reply(CallerTurn("לא יודע", 0.95))
    assert reply.final and d.lead.callback_at == NOW + dt.timedelta(hours=2)


def test_not_interested_still_ends_the_call() -> None:
    d = dialog()
    reply = d.reply(CallerTurn("אני לא מעוניין, תורידו אותי", 0.95))
    assert reply.final and d.lead.status == "lost" and d.lead.callback_at is None


def test_retract_keeps_the_outbound_context() -> None:
    brain = RuleBrain("he-IL", PHONE, NOW)
    brain.call_out(DANA)
    brain.heard(brain.opening(), True)

    async def turn() -> list[str]:
        return [s async for s in brain.respond(CallerTurn("לא זמן טוב, בשש", 0.95))]

    trio.run(turn)
    brain.retract()
    assert brain.dialog.phase == "good_time" and brain.lead.callback_at is None
    assert brain.dialog.outbound is DANA


def test_the_callback_survives_the_journal() -> None:
    lead = LeadState(Slots(name="דנה"), callback_at=dt.datetime(2026, 12, 1, 18, 0, tzinfo=TZ))
    assert _decode(_encode(lead)) == lead
    old = _encode(LeadState())
    del old["$lead"]["callback_at"]  # a record journaled before callbacks existed
    assert _decode(old) == LeadState()


# -- the OpenAI brain -------------------------------------------------------------------------------

def openai_brain(fake) -> OpenAIBrain:
    brain = OpenAIBrain(OpenAIConfig(api_key="sk-test", model="fake", base_url=fake.base_url), "he-IL", PHONE, NOW)
    brain.call_out(DANA)
    brain.heard(brain.opening(), True)
    return brain


async def say(brain: OpenAIBrain, text: str) -> list[str]:
    with trio.fail_after(10):
        out = [s async for s in brain.respond(CallerTurn(text, 0.9))]
    brain.heard(" ".join(out), True)
    return out


async def test_openai_brain_opens_outbound_and_the_model_knows(fake_openai) -> None:
    brain = openai_brain(fake_openai)
    assert brain.history[0]["content"].startswith("היי דנה, מדברת נועה")
    assert await say(brain, "כן, אפשר") == ["מעולה.", "מה התקציב בערך?"]  # the rules answer "good time?"
    assert fake_openai.requests == []
    fake_openai.push(Script("רשמתי, עד שני מיליון. תוך כמה זמן מתכננים לעבור?", tool_args={"budget_ils": 2_000_000}))
    await say(brain, "עד שני מיליון")
    messages = fake_openai.requests[0]["messages"]
    assert {"role": "system", "content": OUTBOUND_NOTE} in messages
    note = next(m["content"] for m in messages if m["content"].startswith("עכשיו:"))
    assert "name=דנה כהן" in note and "area=רמת גן" in note and "phone" not in note.split("חסר:")[1]
    assert brain.lead.slots.budget_ils == 2_000_000


async def test_openai_brain_callback_needs_no_model(fake_openai) -> None:
    brain = openai_brain(fake_openai)
    out = await say(brain, "אני נוהג, תתקשרי מחר בעשר")
    assert out == ["בסדר גמור, נחזור מחר בעשר.", "יום נעים."] and brain.finished
    assert brain.lead.callback_at == dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ)
    assert fake_openai.requests == []


def test_dont_call_me_again_is_remembered() -> None:
    for text in ("אל תתקשרו אליי יותר", "תורידו אותי מהרשימה", "please stop calling me", "don't call again"):
        d = dialog()
        reply = d.reply(CallerTurn(text, 0.95))
        assert d.lead.do_not_call and reply.final, text
    d = dialog()
    d.reply(CallerTurn("כן", 0.95))
    assert not d.lead.do_not_call


def test_cut_short_mid_call_with_a_time_is_a_callback() -> None:
    d = dialog()
    d.heard(d.reply(CallerTurn("כן", 0.95)).text, True)
    reply = d.reply(CallerTurn("אין לי זמן עכשיו, תתקשרו מחר בעשר", 0.95))
    assert reply.final and d.lead.callback_at == dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ)


async def test_openai_brain_dont_call_needs_no_model_judgement(fake_openai) -> None:
    brain = openai_brain(fake_openai)
    await say(brain, "כן")
    fake_openai.push(Script("בסדר גמור, תודה ויום נעים.", tool_args={"not_interested": True}))
    await say(brain, "אני לא מעוניין, אל תתקשרו אליי יותר")
    assert brain.lead.do_not_call and brain.lead.status == "lost"
