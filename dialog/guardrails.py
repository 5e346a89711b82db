"""The reply rules, checked and repaired in code (pure: no I/O, no clocks).

Every agent turn: at most 2 sentences and 20 words, exactly one question, and it is the
last thing said (ends with "?"). No listing or inventing apartments, prices or
availability. A reply that breaks a rule is repaired by trimming it to its last question;
the caller of :func:`enforce` decides what happens when that is impossible (the OpenAI
brain regenerates once, then speaks a safe line).

The goodbye is the one exception to the question rule (``final=True``): a closing line
that asks something invites an answer the call will not be there to hear.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from speech.sentences import split_sentences

MAX_SENTENCES = 2
MAX_WORDS = 20

_MONEY = re.compile(
    r"(₪\s*\d|\d[\d,.]*\s*(?:₪|ש\"ח|שקל|שקלים|nis|shekel|shekels|\$|dollars?)"
    r"|\d[\d,.]*\s*(?:מיליון|מליון|אלף|million|thousand|k\b))",
    re.IGNORECASE,
)
# Phrases that offer or describe concrete properties, their price or availability.
_LISTING = re.compile(
    r"(יש\s+(?:לי|לנו)\s+(?:דיר|נכס|בית|פנטהאוז|וילה|דופלקס)|מצאתי\s+(?:לך\s+)?(?:דיר|נכס|בית)"
    r"|דיר(?:ה|ות)\s+(?:פנוי|זמינ|למכירה\s+ב)|במחיר\s+של|עולה\s+\d|זמינה\s+מ"
    r"|\bwe\s+have\s+(?:a|an|some|several|\d+)?\s*(?:apartment|flat|house|propert|listing|penthouse|villa)"
    r"|\bi\s+(?:have|found)\s+(?:a|an|some|\d+)?\s*(?:apartment|flat|house|propert|listing|penthouse|villa)"
    r"|\b(?:is|are)\s+available\s+(?:now|for|at|from)|\blisted\s+(?:at|for)|\bpriced\s+at|\bcosts?\s+\d"
    r"|\bthere\s+(?:is|are)\s+(?:a|an|some|\d+)\s+(?:apartment|flat|house|propert|listing)s?\s+(?:for|in|at|available))",
    re.IGNORECASE,
)

RULES = ("too_many_sentences", "too_many_words", "no_question", "two_questions", "not_ending_question", "listing")


def sentences(text: str) -> list[str]:
    """The same split the synthesizers make (one definition of a sentence, so the TTS cache of
    fixed lines matches what the brain says sentence by sentence)."""
    return split_sentences(text)


def words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True, slots=True)
class Verdict:
    text: str | None  # the reply to speak (original or repaired); None when unrepairable
    violations: tuple[str, ...] = field(default=())
    repaired: bool = False


def check(text: str, *, final: bool = False, allowed_amounts: frozenset[int] = frozenset()) -> list[str]:
    """The rules this reply breaks (empty when it is fine)."""
    found: list[str] = []
    text = text.strip()
    if len(sentences(text)) > MAX_SENTENCES:
        found.append("too_many_sentences")
    if words(text) > MAX_WORDS:
        found.append("too_many_words")
    questions = text.count("?")
    if final:
        if questions:
            found.append("two_questions" if questions > 1 else "not_ending_question")
    else:
        if questions == 0:
            found.append("no_question")
        elif questions > 1:
            found.append("two_questions")
        if questions and not text.endswith("?"):
            found.append("not_ending_question")
    if _LISTING.search(text) or _invented_amount(text, allowed_amounts):
        found.append("listing")
    return found


def _invented_amount(text: str, allowed: frozenset[int]) -> bool:
    """A money figure the caller never gave us is an invented price."""
    from dialog.extract import budget_in  # local: extract imports nothing from here

    if not _MONEY.search(text):
        return False
    amount = budget_in(text)
    return amount is not None and amount not in allowed


def repair(text: str) -> str | None:
    """Trim to the last question (plus one short statement before it), or None."""
    parts = sentences(text)
    last_q = max((i for i, s in enumerate(parts) if s.endswith("?")), default=None)
    if last_q is None:
        return None
    question = parts[last_q]
    if question.count("?") > 1:  # "A? B?" glued without a space
        question = question[question.rstrip("?").rfind("?") + 1 :].strip()
    keep = [question]
    if last_q > 0 and "?" not in parts[last_q - 1] and words(parts[last_q - 1]) + words(question) <= MAX_WORDS:
        keep.insert(0, parts[last_q - 1])
    repaired = " ".join(keep)
    return repaired if words(repaired) <= MAX_WORDS else None


def enforce(text: str, *, final: bool = False, allowed_amounts: frozenset[int] = frozenset()) -> Verdict:
    violations = tuple(check(text, final=final, allowed_amounts=allowed_amounts))
    if not violations:
        return Verdict(text.strip())
    if "listing" in violations or final:
        return Verdict(None, violations)
    fixed = repair(text)
    if fixed is not None and not check(fixed, allowed_amounts=allowed_amounts):
        return Verdict(fixed, violations, repaired=True)
    return Verdict(None, violations)


class StreamGuard:
    """The same rules, applied sentence by sentence while a reply streams in.

    A sentence must be approved before it is spoken, so the guard decides without the rest
    of the reply: a question ends the turn (anything after it is dropped: "trim to the last
    question" in streaming form); a statement may open the turn; a second statement, a
    sentence that would pass 20 words, or a listing is dropped. If the stream ends without
    a question, :meth:`finish` says so and the brain adds a safe question.
    """

    def __init__(self, allowed_amounts: frozenset[int] = frozenset(), reserve: int = 0) -> None:
        self.allowed_amounts = allowed_amounts
        self.reserve = reserve  # words an opening statement leaves for a closing question
        self.spoken: list[str] = []
        self.violations: list[str] = []
        self.done = False  # a question was spoken: the turn is complete

    @property
    def words_spoken(self) -> int:
        return sum(words(s) for s in self.spoken)

    def offer(self, sentence: str) -> str | None:
        """The sentence to speak now, or None (dropped). Never call after ``done``."""
        sentence = sentence.strip()
        if not sentence or self.done:
            if sentence:
                self.violations.append("too_many_sentences")
            return None
        if _LISTING.search(sentence) or _invented_amount(sentence, self.allowed_amounts):
            self.violations.append("listing")
            return None
        if sentence.count("?") > 1:
            self.violations.append("two_questions")
            fixed = repair(sentence)
            if fixed is None:
                return None
            sentence = fixed
        if "?" in sentence and not sentence.endswith("?"):
            self.violations.append("not_ending_question")
            sentence = sentence[: sentence.rfind("?") + 1]
        if self.words_spoken + words(sentence) > MAX_WORDS:
            self.violations.append("too_many_words")
            return None
        is_question = sentence.endswith("?")
        if not is_question and self.words_spoken + words(sentence) + self.reserve > MAX_WORDS:
            self.violations.append("too_many_words")
            return None
        if not is_question and self.spoken:
            self.violations.append("too_many_sentences")
            return None
        self.spoken.append(sentence)
        self.done = is_question
        return sentence

    def finish(self) -> bool:
        """True when the turn still needs its closing question."""
        if not self.done:
            self.violations.append("no_question")
        return not self.done


def fits_after(spoken_words: int, question: str) -> bool:
    return spoken_words + words(question) <= MAX_WORDS
