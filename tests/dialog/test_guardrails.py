from __future__ import annotations

from hypothesis import given, strategies as st

from dialog import guardrails as g


def test_good_replies_pass():
    assert g.check("מעולה, דירה בתל אביב. מה התקציב בערך?") == []
    assert g.check("Great. Which area are you looking in?") == []
    assert g.check("עד 2.5 מיליון, נכון?", allowed_amounts=frozenset({2_500_000})) == []


def test_each_rule_is_detected():
    assert "too_many_sentences" in g.check("אחת. שתיים. מה שלוש?")
    assert "too_many_words" in g.check(" ".join(["מילה"] * 20) + " שאלה?")
    assert g.check("רשמתי.") == ["no_question"]
    assert "two_questions" in g.check("באיזה אזור? ומה התקציב?")
    assert "not_ending_question" in g.check("באיזה אזור? תודה.")
    assert "listing" in g.check("יש לנו דירה מדהימה בדיזנגוף. רוצה לראות?")
    assert "listing" in g.check("We have an apartment in Haifa. Interested?")
    assert "listing" in g.check("It costs 3 million shekels. Interested?")  # a price the caller never gave
    assert g.check("תודה רבה, יום נעים.", final=True) == []
    assert g.check("תודה, נתראה?", final=True) == ["not_ending_question"]


def test_repair_trims_to_the_last_question():
    assert g.repair("תודה. רשמתי הכל. באיזה אזור? ומה התקציב?") == "ומה התקציב?"
    assert g.repair("רשמתי הכל, תודה רבה. מה התקציב?") == "רשמתי הכל, תודה רבה. מה התקציב?"
    assert g.repair("סתם משפט.") is None
    v = g.enforce("שלום. רשמתי. באיזה אזור?")
    assert v.repaired and v.text == "רשמתי. באיזה אזור?" and v.violations == ("too_many_sentences",)
    assert g.enforce("יש לנו דירה פנויה. מתאים?").text is None


def test_stream_guard_speaks_a_question_and_drops_the_rest():
    guard = g.StreamGuard()
    assert guard.offer("מעולה.") == "מעולה."
    assert guard.offer("עוד משפט.") is None  # a second statement
    assert guard.offer("מה התקציב?") == "מה התקציב?"
    assert guard.done and guard.offer("ועוד שאלה?") is None
    assert guard.violations == ["too_many_sentences", "too_many_sentences"]
    assert not guard.finish()


def test_stream_guard_reserves_room_for_the_closing_question():
    guard = g.StreamGuard(reserve=4)
    assert guard.offer(" ".join(["מילה"] * 17) + ".") is None
    assert guard.offer("רשמתי.") == "רשמתי."
    assert guard.finish() and guard.violations == ["too_many_words", "no_question"]


_word = st.sampled_from(["דירה", "בתל", "אביב", "מה", "the", "budget", "2.5", "כן", "יש", "לנו"])
_sentence = st.builds(lambda ws, end: " ".join(ws) + end, st.lists(_word, min_size=1, max_size=12), st.sampled_from([".", "?", "!", ""]))


@given(st.lists(_sentence, min_size=1, max_size=5))
def test_enforce_never_lets_a_bad_reply_through(parts):
    v = g.enforce(" ".join(parts))
    if v.text is not None:
        assert g.check(v.text) == []
