"""The rule brain's extraction meets the accuracy goal on the utterance corpus, slot by slot.

The table itself: ``python -m tests.dialog.slot_accuracy`` (README "Understanding callers").
"""
from __future__ import annotations

import pytest

from slot_accuracy import GOAL, JUDGED, score
from utterances import EN, HE, HE_HELDOUT, SLOTS


def test_corpus_is_big_enough():
    assert len(HE) >= 300 and len(EN) >= 60
    for slot in SLOTS:
        assert sum(slot in row.want for row in HE) >= 20, slot  # every slot is tried on real answers
    assert sum("yes" in row.want for row in HE) >= 40


@pytest.mark.parametrize("rows, language", [(HE, "he-IL"), (HE_HELDOUT, "he-IL"), (EN, "en-US")],
                         ids=["he-IL", "he-IL-held-out", "en-US"])
def test_every_slot_meets_the_goal(rows, language):
    scores = score(rows, language == "he-IL")
    below = {slot: s for slot, s in scores.items() if s.judged and s.accuracy < GOAL}
    misses = "\n".join(m for s in below.values() for m in s.misses)
    assert not below, f"{language}: below {GOAL:.0%}: " + ", ".join(
        f"{slot} {s.accuracy:.1%}" for slot, s in below.items()) + "\n" + misses
    assert set(scores) == set(JUDGED)
