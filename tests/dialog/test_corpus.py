"""The offline brain holds whole calls: every agent turn obeys the rules; the end state is right."""
from __future__ import annotations

import re

import pytest

from dialog_corpus import CORPUS, Conv
from dialog import guardrails
from dialog.base import CallerTurn
from dialog.rules import RuleBrain
from dialog.schedule import TZ, hours_on

# A woman speaking Hebrew: these first-person masculine forms must never appear.
_MASCULINE_SELF = re.compile(r"אני\s+(?:מקשיב|שמח|בודק|יכול|מבין|מתקשר|רושם|מחפש)(?![הת])")


def run(conv: Conv) -> tuple[RuleBrain, list[str]]:
    brain = RuleBrain(conv.lang, conv.phone, conv.now)
    agent = [brain.opening()]
    for turn in conv.turns:
        assert not brain.finished, f"{conv.name}: the call ended before the caller said {turn.text!r}"
        prev = agent[-1]
        if turn.cut:
            words = prev.split()
            brain.heard(" ".join(words[: max(1, len(words) // 2)]), heard_fully=False)
        else:
            brain.heard(prev, heard_fully=True)
        out = list(_collect(brain, CallerTurn(turn.text, turn.confidence, turn.cut)))
        agent.append(" ".join(out))
    return brain, agent


def _collect(brain, turn):
    import trio

    async def go():
        return [s async for s in brain.respond(turn)]

    return trio.run(go)


def test_corpus_is_big_and_bilingual():
    assert len(CORPUS) >= 30
    assert sum(c.lang == "he-IL" for c in CORPUS) >= 15 and sum(c.lang == "en-US" for c in CORPUS) >= 12


@pytest.mark.parametrize("conv", CORPUS, ids=lambda c: c.name)
def test_conversation(conv: Conv):
    brain, agent = run(conv)
    transcript = "\n".join(agent)
    for i, line in enumerate(agent):
        final = brain.finished and i == len(agent) - 1
        assert guardrails.check(line, final=final, allowed_amounts=frozenset({brain.lead.slots.budget_ils or 0})) == [], (
            f"{conv.name} turn {i}: {line!r}\n{transcript}"
        )
        if conv.lang == "he-IL":
            assert not _MASCULINE_SELF.search(line), line
    assert brain.dialog.violations == [], transcript
    for key, value in conv.slots.items():
        assert getattr(brain.lead.slots, key) == value, f"{conv.name}: {key}\n{transcript}"
    assert brain.lead.status == conv.status, transcript
    assert brain.finished == conv.finished, transcript
    if conv.meeting:
        at = brain.lead.meeting_at
        assert at is not None and at.tzinfo is not None, transcript
        at = at.astimezone(TZ)
        assert (at.weekday(), at.hour) == conv.meeting, f"{at}\n{transcript}"
        assert at.hour in hours_on(at.date())  # never Shabbat / a holiday / outside office hours
        assert at > conv.now
        assert brain.lead.status == "meeting_booked"
    elif conv.status != "meeting_booked":
        assert brain.lead.meeting_at is None
    for phrase in conv.said:
        assert phrase in transcript, f"{conv.name}: expected {phrase!r}\n{transcript}"
    for phrase in conv.never_said:
        assert phrase not in transcript, transcript
    summary = brain.summary()
    assert summary and ("AgentLocator" in summary)
    if brain.lead.meeting_at:
        assert f"{brain.lead.meeting_at:%H:%M}" in summary


@pytest.mark.parametrize("conv", CORPUS, ids=lambda c: c.name)
def test_every_line_reaches_the_voice_in_words(conv: Conv):
    """What the synthesizer is fed (speech/spoken.py) for each line the brain wrote: no digits,
    no shekel sign, no Latin letters in Hebrew ("דירת 4 חדרים" is voiced "דירת ארבעה חדרים")."""
    from speech.sentences import split_sentences
    from speech.spoken import spoken

    brain, agent = run(conv)
    for line in agent:
        for sentence in split_sentences(line):  # the session synthesizes sentence by sentence
            said = spoken(sentence, conv.lang)
            assert not re.search(r"[0-9₪%$]", said), (sentence, said)
            if conv.lang == "he-IL":
                assert not re.search(r"[A-Za-z]", said), (sentence, said)
