"""Whatever the caller says, every reply of the offline brain obeys the rules and the call ends."""
from __future__ import annotations

import trio
from hypothesis import HealthCheck, given, settings, strategies as st

from dialog_corpus import CALLER, NOW
from dialog import guardrails
from dialog.base import CallerTurn
from dialog.rules import MAX_TURNS, RuleBrain

FRAGMENTS = [
    "דירה", "בתל אביב", "4 חדרים", "מיליון וחצי", "תוך חודשיים", "קוראים לי דנה", "כן", "לא", "מחר בעשר", "הראשון",
    "אף אחד לא מתאים", "רגע", "מה יש לכם?", "לא רוצה להגיד", "ביום ראשון", "זהו תודה", "אממ", "בעצם בחיפה",
    "Tel Aviv", "an apartment", "three bedrooms", "two million", "asap", "my name is Tom", "yes", "no", "the second one",
    "what do you have?", "wait", "I'd rather not say", "Friday", "bye", "052-7654321", "שתיים וחצי", "900k", "?", "...",
]
turns = st.lists(
    st.tuples(
        st.lists(st.sampled_from(FRAGMENTS), min_size=0, max_size=3).map(" ".join),
        st.floats(0, 1),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1, max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["he-IL", "en-US"]), st.sampled_from([CALLER, ""]), turns)
def test_every_reply_obeys_the_rules(language, phone, script):
    brain = RuleBrain(language, phone, NOW)
    last = brain.opening()

    async def one(turn):
        return [s async for s in brain.respond(turn)]

    for n, (text, confidence, interrupted, heard_fully) in enumerate(script):
        if brain.finished:
            break
        brain.heard(last if heard_fully else " ".join(last.split()[:2]), heard_fully)
        out = trio.run(one, CallerTurn(text, confidence, interrupted))
        last = " ".join(out)
        assert out, "every turn says something"
        amounts = frozenset({brain.lead.slots.budget_ils}) if brain.lead.slots.budget_ils else frozenset()
        assert guardrails.check(last, final=brain.finished, allowed_amounts=amounts) == [], last
        assert n < MAX_TURNS
    if brain.lead.status == "meeting_booked":
        assert brain.lead.meeting_at is not None
    assert brain.summary()
    assert brain.dialog.violations == []  # the templates never needed repair
