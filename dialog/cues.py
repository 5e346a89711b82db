"""Conversational cues in a caller's words, Hebrew (he-IL) and English (en-US), in one place.

Pure functions over text as the recogniser gives it: Google's Hebrew has no niqqud, may or
may not carry punctuation, and glues one-letter prefixes to the next word ("בחיפה",
"ושלוש"); English comes in any case. Every function judges the *whole* utterance (or, for
:func:`ends_mid_phrase`, its last words) and takes the call's language ("he-IL", "iw-IL",
"en-US", ...; anything not Hebrew is English).

- :func:`is_backchannel` — only "כן", "אהה", "okay", "uh-huh"...: the caller is listening.
- :func:`holds_floor` — "רגע", "שנייה", "wait", "hold on": the caller wants the floor.
- :func:`only_holds_floor` — took the turn but said nothing yet: a floor word, a filler
  ("אממ", "um") or a bare apology ("סליחה", "sorry").
- :func:`asks_repeat` — "מה?", "לא שמעתי", "sorry, what?", "come again?": say it again.
- :func:`is_closing` — only thanks / bye / "that's all": the caller is taking leave.
- :func:`is_noise_transcript` — what recognisers write for a knock or a cough: "Thank you.",
  "you", "[Music]", "♪", "...", Hebrew Whisper's "תודה רבה." on silence.
- :func:`ends_mid_phrase` — a partial that stops on "and", "של", "ב", "אממ", "two point":
  the caller is probably not done.
- :func:`asked_about` — the slot an agent's question asks for ("מה התקציב בערך?" -> budget_ils),
  for a model's questions, which carry no label.
- :func:`yes_no` — the answer to a yes/no question: "בטח", "סגור", "יאללה", "אחלה" are yes;
  "לא ממש", "עזבי", "בטח שלא" are no; "לא יודע", "אולי" neither.

Tokens come from :func:`dialog.extract.tokens` (the same normalisation the slot extractors
use); a word list is matched against the whole token sequence, so "כן, בחיפה" is not a
backchannel and "what is the price?" is not a request to repeat.
"""
from __future__ import annotations

import re
from typing import Iterable

from dialog.extract import _NUM_WORDS, tokens
from dialog.phrases import is_hebrew

Kinds = dict[tuple[str, ...], str]

# -- the lexicons ------------------------------------------------------------------------------
# Each group is a list of phrases (space-separated tokens as extract.tokens gives them).

_ACK_HE = (
    "כן", "נכון", "בסדר", "אוקיי", "אוקי", "אוקיי אוקיי", "או קיי", "ok", "okay", "יופי", "ברור", "בטח", "בדיוק",
    "טוב", "סבבה", "יאללה", "אחלה", "מעולה", "מצוין", "הבנתי", "אה הא", "אהא", "אוקיי הבנתי", "תודה", "תודה רבה",
    "כמובן", "נו", "וואו", "אה אוקיי", "מבין", "מבינה", "אני מבין", "אני מבינה", "ממש", "אכן",
)
_ACK_EN = (
    "okay", "ok", "k", "kay", "uh huh", "mhm", "mm hmm", "mm hm", "hmm", "yeah", "yes", "yep", "yup", "ya", "yea",
    "yah", "right", "sure", "i see", "got it", "gotcha", "alright", "all right", "cool", "great", "fine", "perfect",
    "exactly", "true", "of course", "makes sense", "understood", "sounds good", "good", "nice", "oh", "ah", "aha",
    "oh okay", "thanks", "thank you", "uh-huh", "right right", "yes yes", "absolutely", "definitely", "correct",
    "indeed", "wow",
)
# A single token that is only drawn-out sounds: "אההה", "ממממ", "mmm", "mhmm", "uhhuh".
_ACK_SOUND_HE = re.compile(r"^(?:א+ה+א*|א+ה+ה*א+|מ{2,}ם?|ה+מ+ם?|אה+ם?)$")
_ACK_SOUND_EN = re.compile(r"^(?:m{2,}|m+h+m+|h+m+|a+h+a*|o+h+|uh+huh+|uhuh|yeah+|ye+s+|o+k+a+y+|hm+)$")

_FILLER_HE = ("כאילו",)
_FILLER_SOUND_HE = re.compile(r"^(?:א+מ+ם?|א+ה+|א{2,}|ה+מ+ם?|מ{2,}ם?|אה+ם|ה{2,}|אמ+)$")
_FILLER_EN = ("like", "you know", "i mean", "well")
_FILLER_SOUND_EN = re.compile(r"^(?:u+m+|u+h+m*|e+r+m*|e+h+|h+m+|a+h+|m{2,}|a+|o+h+)$")

_HOLD_HE = (
    "רגע", "שנייה", "שניה", "חכי", "חכה", "חכו", "תחכי", "תחכה", "תחכו", "עצרי", "עצור", "עצרו", "תעצרי", "תעצור",
    "תעצרו", "די", "סטופ", "רגע אחד", "שנייה אחת", "שניה אחת", "רק רגע", "רק שנייה", "רק שניה", "דקה", "רק דקה",
    "חכי רגע", "חכה רגע", "stop", "wait",
)
_HOLD_EN = (
    "wait", "hold on", "hang on", "hold up", "stop", "one sec", "one second", "one moment", "one minute", "a sec",
    "a second", "a moment", "a minute", "just a sec", "just a second", "just a moment", "just a minute",
    "give me a sec", "give me a second", "give me a moment", "give me a minute", "sec", "wait up", "stop stop",
)
_SORRY_HE = ("סליחה", "סליחה סליחה", "אני מצטער", "אני מצטערת", "מצטער", "מצטערת", "פרדון")
_SORRY_EN = ("sorry", "excuse me", "i'm sorry", "so sorry", "oops")
_POLITE_HE = ("רק", "בבקשה")
_POLITE_EN = ("just", "please", "um please")
_NO_HE = ("לא", "לא לא")
_NO_EN = ("no", "no no", "nope")

_REPEAT_HE = (
    "מה", "מה אמרת", "מה אמרתם", "מה אמרת עכשיו", "מה שאלת", "מה היה", "מה היתה השאלה", "מה הייתה השאלה",
    "מה השאלה", "לא שמעתי", "לא שמעתי טוב", "לא שמעתי אותך", "לא שמעתי מה אמרת", "לא הבנתי", "לא הבנתי אותך",
    "לא הבנתי מה אמרת", "לא קלטתי", "לא שמעתי את השאלה", "לא הבנתי את השאלה", "אפשר לחזור", "אפשר שוב",
    "אפשר עוד פעם", "אפשר לחזור שוב", "תחזרי", "תחזרי שוב", "חזרי", "תוכלי לחזור", "את יכולה לחזור",
    "יכולה לחזור", "אפשר להגיד שוב", "תגידי שוב", "תגידי עוד פעם", "עוד פעם", "שוב", "הא", "אה מה", "כן מה",
    "סליחה מה", "מה סליחה", "נשמע לא טוב", "לא שומעים", "לא שומע", "לא שומעת", "לא שומעים טוב", "מה עוד פעם",
    "אני לא שומע", "אני לא שומעת", "לא שמעתי כלום",
)
_REPEAT_TAIL_HE = ("על זה", "על השאלה", "את השאלה", "את זה", "אותך", "טוב", "בבקשה", "שוב", "עוד פעם", "רגע")
_REPEAT_EN = (
    "what", "what was that", "what did you say", "what did you just say", "what's that", "what is that",
    "what was the question", "what's the question", "pardon", "pardon me", "i beg your pardon", "beg your pardon",
    "come again", "say that again", "say again", "say it again", "repeat that", "repeat", "can you repeat",
    "could you repeat", "would you repeat", "can you say that again", "could you say that again",
    "would you say that again", "can you say it again", "could you say it again", "one more time",
    "i didn't catch that", "didn't catch that", "i didn't catch it", "didn't catch it", "i didn't hear",
    "i didn't hear that", "didn't hear that", "i didn't hear you", "didn't hear you", "i didn't get that",
    "didn't get that", "i missed that", "missed that", "you broke up", "you're breaking up", "i can't hear you",
    "can't hear you", "huh", "sorry what", "what sorry", "again", "what now",
)
_REPEAT_TAIL_EN = ("please", "that", "again", "the question", "you", "for me", "the last part")

_CLOSING_HE = (
    "תודה", "תודה רבה", "תודה לך", "תודה לכם", "ביי", "ביי ביי", "להתראות", "שלום", "שלום שלום", "יום טוב",
    "יום נעים", "ערב טוב", "לילה טוב", "שבוע טוב", "שבת שלום", "גם לך", "גם לכם", "זהו", "זה הכל", "זה הכול",
    "זהו זה", "אין עוד", "אין", "לא תודה", "לא צריך", "אין צורך", "נתראה", "נדבר", "בהצלחה", "שיהיה", "כל טוב",
    "הכל טוב", "הכול טוב", "זה מספיק", "אין לי עוד שאלות", "אין עוד שאלות", "לא עוד", "מצוין תודה",
)
_CLOSING_EN = (
    "thanks", "thank you", "thank you so much", "thanks a lot", "thank you very much", "many thanks", "bye",
    "bye bye", "goodbye", "good bye", "bye now", "see you", "see ya", "have a nice day", "have a good day",
    "have a great day", "you too", "same to you", "take care", "that's all", "that's it", "that is all",
    "nothing else", "no thanks", "no thank you", "cheers", "all good", "i'm good", "we're good", "that's everything",
    "no more questions", "that'll be all", "talk soon", "talk to you later", "good night", "have a good one",
)

# The answer to a yes/no question, judged on how the utterance starts (the longest phrase
# there wins: "לא יודע" is unsure, not "לא"; "בטח שלא" is no, not "בטח").
_YES_HE = (
    "כן", "כן כן", "נכון", "נכון מאוד", "זה נכון", "בטח", "בדיוק", "אכן", "מאשר", "מאשרת", "סגור", "סגרנו", "מתאים",
    "מתאים לי", "זה מתאים", "בסדר", "בסדר גמור", "יאללה", "אוקיי", "אוקי", "או קיי", "ok", "okay", "ברור", "מעולה",
    "מצוין", "כמובן", "אחלה", "סבבה", "יופי", "בהחלט", "נשמע טוב", "נשמע מצוין", "נשמע מעולה", "בשמחה", "למה לא",
    "הולך", "זה עובד", "עובד לי", "טוב", "תקבעי", "תקבעי את זה", "קבענו", "בוודאי", "ודאי", "אין בעיה", "מסכים",
    "מסכימה", "בכיף", "מושלם", "אשמח",
)
_NO_HE = (
    "לא", "לא לא", "ממש לא", "לא ממש", "עזבי", "עזוב", "עזבו", "תעזבי", "לא תודה", "בטח שלא", "ברור שלא",
    "לא מתאים", "זה לא מתאים", "לא כל כך", "לא כזה", "אין מצב", "לא נראה לי", "נראה לי שלא", "בכלל לא",
    "אני לא חושב", "אני לא חושבת", "לא חושב", "לא חושבת", "חס וחלילה", "פחות", "לא צריך", "אין צורך", "שלילי",
    "לא רוצה", "לא מעוניין", "לא מעוניינת", "לא נכון", "טעות",
)
_UNSURE_HE = (
    "לא יודע", "לא יודעת", "אני לא יודע", "אני לא יודעת", "לא בטוח", "לא בטוחה", "אני לא בטוח", "אני לא בטוחה",
    "אולי", "תלוי", "יכול להיות", "לא יודע עדיין", "עוד לא יודע", "עוד לא יודעת", "צריך לחשוב", "אני אחשוב",
    "לא החלטתי", "לא החלטנו",
)
_YES_EN = (
    "yes", "yeah", "yep", "yup", "ya", "yea", "correct", "right", "that's right", "sure", "sure thing", "ok", "okay",
    "perfect", "fine", "great", "absolutely", "definitely", "of course", "sounds good", "sounds great",
    "that works", "works for me", "go ahead", "why not", "alright", "all right", "exactly", "certainly",
    "yes please", "good", "cool", "i agree", "let's do it", "book it",
)
_NO_EN = (
    "no", "nope", "nah", "not really", "no way", "forget it", "of course not", "definitely not", "absolutely not",
    "no thanks", "no thank you", "i don't think so", "don't think so", "not at all", "wrong", "that's wrong",
    "not quite", "never mind", "nevermind", "not interested", "that's not right", "not right",
)
_UNSURE_EN = (
    "maybe", "perhaps", "not sure", "i'm not sure", "i am not sure", "i don't know", "don't know", "depends",
    "it depends", "let me think", "i'll think about it", "possibly",
)
_ANSWER_LEAD_HE = ("אה", "אהה", "אממ", "אמ", "אז", "נו", "אוף", "וואלה")
_ANSWER_LEAD_EN = ("oh", "uh", "um", "umm", "well", "hmm", "so", "ah")


def _answer_table(pairs: Iterable[tuple[str, Iterable[str]]]) -> dict[tuple[str, ...], str]:
    table: dict[tuple[str, ...], str] = {}
    for kind, phrases in pairs:
        for phrase in phrases:
            table.setdefault(tuple(tokens(phrase)), kind)
    return table


_ANSWERS = (
    _answer_table([("unsure", _UNSURE_HE), ("no", _NO_HE), ("yes", _YES_HE)]),
    _answer_table([("unsure", _UNSURE_EN), ("no", _NO_EN), ("yes", _YES_EN)]),
)
_ANSWER_LEADS = (frozenset(_ANSWER_LEAD_HE), frozenset(_ANSWER_LEAD_EN))


# Whisper's (and other recognisers') writing for a knock, a cough or silence.
_NOISE_EN = (
    "you", "thank you", "thanks", "thank you very much", "thank you so much", "thanks for watching",
    "thank you for watching", "thank you so much for watching", "thanks for listening", "thank you for listening",
    "bye", "bye bye", "hmm", "mm", "please subscribe", "subscribe", "like and subscribe", "see you next time",
    "the end", "blank audio", "music", "applause", "silence", "laughter", "coughs", "cough", "noise", "inaudible",
)
_NOISE_HE = (
    "תודה", "תודה רבה", "תודה רבה לכם", "תודה לכם", "תודה שצפיתם", "תודה על הצפייה", "תודה רבה על הצפייה",
    "תודה רבה שצפיתם", "תודה שהאזנתם", "הירשמו לערוץ", "מוזיקה", "מוסיקה", "כתוביות", "ביי",
)
_NOISE_MARKERS = re.compile(r"(amara\.org|subtitles?\s+by|captions?\s+by|כתוביות|תורגם\s+(?:על\s+ידי|ע\"י)|תרגום\s*:)", re.I)
_BRACKETED = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|<[^>]*>|[♪♫♩♬🎵🎶]")

# Words a phrase does not end on.
_DANGLING_EN = frozenset({
    "and", "or", "but", "nor", "in", "of", "to", "with", "for", "at", "like", "the", "a", "an", "from", "on",
    "about", "around", "into", "onto", "than", "because", "cause", "if", "my", "our", "your", "their", "its",
    "between", "near", "within", "plus", "as", "per", "under", "toward", "towards", "without", "i'm", "we're",
    "i'd", "we'd", "whether",
})
_DANGLING_HE = frozenset({
    "ו", "או", "אבל", "של", "עם", "עד", "בין", "כמו", "ש", "אז", "את", "על", "כי", "אם", "גם", "תוך", "בתוך",
    "בעוד", "לפני", "אחרי", "מאשר", "לגבי", "בשביל", "אצל", "מול", "ליד", "כש", "כאילו", "אלא", "רק",
    "בסביבות", "בסביבת", "לכיוון",
})
_DECIMAL_POINT = frozenset({"point", "dot", "נקודה"})
_RANGE_START = frozenset({"between", "from", "בין", "מ", "מבין"})
# "ב", "ו", "וב", "שב", "כש" on their own: a prefix waiting for its word.
_PREFIX_ONLY = re.compile(r"^(?:[ובלמהשכ]|[וש][ובלמהשכ])$")


class _Lexicon:
    """Phrases of one language, each with a kind ("ack", "hold", ...), and one-token sound patterns."""

    def __init__(self, groups: Iterable[tuple[str, Iterable[str]]], sounds: Iterable[tuple[str, re.Pattern[str]]] = ()):
        self.kinds: Kinds = {}
        for kind, phrases in groups:  # earlier groups win a phrase listed twice
            for phrase in phrases:
                self.kinds.setdefault(tuple(tokens(phrase)), kind)
        self.sounds = list(sounds)
        self.longest = max(len(k) for k in self.kinds)

    def kind(self, run: tuple[str, ...]) -> str | None:
        found = self.kinds.get(run)
        if found is None and len(run) == 1:
            found = next((kind for kind, pattern in self.sounds if pattern.match(run[0])), None)
        return found

    def parse(self, toks: list[str], max_units: int = 8) -> list[str] | None:
        """The kinds of the fewest phrases that make up ``toks`` exactly, or None."""
        n = len(toks)
        if n == 0 or n > max_units * self.longest:
            return None
        best: list[list[str] | None] = [None] * (n + 1)
        best[0] = []
        for i in range(n):
            here = best[i]
            if here is None:
                continue
            for size in range(1, min(self.longest, n - i) + 1):
                kind = self.kind(tuple(toks[i : i + size]))
                if kind is None:
                    continue
                there = best[i + size]
                if there is None or len(here) + 1 < len(there):
                    best[i + size] = [*here, kind]
        return best[n] if best[n] is not None and len(best[n]) <= max_units else None


def _lex(he: list[tuple[str, Iterable[str]]], en: list[tuple[str, Iterable[str]]],
         he_sounds=(), en_sounds=()) -> tuple[_Lexicon, _Lexicon]:
    return _Lexicon(he, he_sounds), _Lexicon(en, en_sounds)


_BACKCHANNEL = _lex([("ack", _ACK_HE)], [("ack", _ACK_EN)], [("ack", _ACK_SOUND_HE)], [("ack", _ACK_SOUND_EN)])
_FLOOR = _lex(
    [("hold", _HOLD_HE), ("sorry", _SORRY_HE), ("polite", _POLITE_HE), ("no", _NO_HE), ("ack", _ACK_HE),
     ("filler", _FILLER_HE)],
    [("hold", _HOLD_EN), ("sorry", _SORRY_EN), ("polite", _POLITE_EN), ("no", _NO_EN), ("ack", _ACK_EN),
     ("filler", _FILLER_EN)],
    [("filler", _FILLER_SOUND_HE)], [("filler", _FILLER_SOUND_EN)],
)
_REPEAT = _lex(
    [("repeat", _REPEAT_HE), ("tail", _REPEAT_TAIL_HE), ("sorry", _SORRY_HE), ("filler", _FILLER_HE)],
    [("repeat", _REPEAT_EN), ("tail", _REPEAT_TAIL_EN), ("sorry", _SORRY_EN), ("filler", _FILLER_EN)],
    [("filler", _FILLER_SOUND_HE)], [("filler", _FILLER_SOUND_EN)],
)
_CLOSING = _lex(
    [("closing", _CLOSING_HE), ("no", _NO_HE), ("ack", _ACK_HE), ("filler", _FILLER_HE)],
    [("closing", _CLOSING_EN), ("no", _NO_EN), ("ack", _ACK_EN), ("filler", _FILLER_EN)],
    [("filler", _FILLER_SOUND_HE)], [("filler", _FILLER_SOUND_EN)],
)
_NOISE = _lex([("noise", _NOISE_HE), ("noise", _NOISE_EN)], [("noise", _NOISE_EN)])


def _pick(pair: tuple[_Lexicon, _Lexicon], language: str) -> _Lexicon:
    return pair[0] if is_hebrew(language) else pair[1]


def _toks(text: str) -> list[str]:
    return tokens(text.replace("’", "'").replace("‘", "'"))


# -- the cues ----------------------------------------------------------------------------------


MAX_BACKCHANNEL_UNITS = 3  # "כן כן כן", "okay okay, got it"


def is_backchannel(text: str, language: str) -> bool:
    """The whole utterance is one to three acknowledgement tokens ("כן כן", "אהה", "נכון",
    "okay", "uh-huh", "I see"). A question mark makes it a question ("כן?", "right?"), not a
    backchannel; anything with content ("כן, בחיפה") is not one either.

    Meant for a caller who spoke over the agent: True means "let the agent go on"."""
    if "?" in text:
        return False
    kinds = _pick(_BACKCHANNEL, language).parse(_toks(text), MAX_BACKCHANNEL_UNITS)
    return kinds is not None


def holds_floor(text: str, language: str) -> bool:
    """The caller wants the floor: "רגע", "שנייה", "רגע רגע", "חכי", "wait", "hold on",
    "one sec", "hang on", "stop" — possibly with "sorry", "no", "yes", "um", "just", "please"
    around it ("סליחה, רגע", "no no, wait"), and nothing else."""
    kinds = _pick(_FLOOR, language).parse(_toks(text))
    return kinds is not None and "hold" in kinds


def only_holds_floor(text: str, language: str) -> bool:
    """The caller took the turn but has said nothing yet: :func:`holds_floor`, or only
    fillers ("אממ", "um"), or only an apology ("סליחה", "sorry", without a question mark:
    "sorry?" is :func:`asks_repeat`)."""
    if holds_floor(text, language):
        return True
    kinds = _pick(_FLOOR, language).parse(_toks(text))
    if kinds is None or not set(kinds) <= {"filler", "sorry", "polite"}:
        return False
    return not ("sorry" in kinds and "?" in text)


def only_fillers(text: str, language: str) -> bool:
    """The whole utterance is hesitation ("אממ", "אה", "um", "uh", "like"): the caller is
    thinking aloud, not taking a turn yet."""
    kinds = _pick(_FLOOR, language).parse(_toks(text))
    return kinds is not None and set(kinds) == {"filler"}


def asks_repeat(text: str, language: str) -> bool:
    """The whole utterance asks to hear the last thing again: "מה?", "סליחה?", "מה אמרת?",
    "לא שמעתי", "אפשר לחזור?", "תחזרי על זה", "what?", "pardon?", "come again?", "say that
    again", "I didn't catch that", "sorry, what?". A bare apology counts only with a question
    mark ("sorry?"); "what is the price?" and "מה התקציב?" are questions, not this."""
    toks = _toks(text)
    kinds = _pick(_REPEAT, language).parse(toks)
    if kinds is None:
        return False
    if "repeat" in kinds:
        return True
    return "?" in text and "sorry" in kinds and set(kinds) <= {"sorry", "filler", "tail"}


def is_closing(text: str, language: str) -> bool:
    """The whole utterance only takes leave: thanks, bye, "that's all", "no thanks", "you
    too", "זהו", "תודה רבה", "יום טוב", "גם לך" (with acknowledgements and fillers around it,
    "okay, thanks, bye"). Anything with content ("תודה, ועוד שאלה") is not."""
    kinds = _pick(_CLOSING, language).parse(_toks(text))
    return kinds is not None and ("closing" in kinds or "no" in kinds)


def is_noise_transcript(text: str, language: str) -> bool:
    """What recognisers write when there was no speech: only punctuation or whitespace; only
    bracketed sound tags or music notes ("[BLANK_AUDIO]", "(coughs)", "[Music]", "♪");
    subtitle credits; or a whole utterance made of Whisper's stock hallucinations ("you",
    "Thank you.", "Thanks for watching!", "Bye.", "Hmm.", and in Hebrew "תודה רבה.",
    "תודה שצפיתם"). Hebrew calls also check the English list (Whisper may switch script).

    Judges the text only: the caller also weighs how much voice there was, since "תודה" and
    "bye" are also real words."""
    if _NOISE_MARKERS.search(text):
        return True
    rest = _BRACKETED.sub(" ", text)
    toks = _toks(rest)
    if not toks:  # nothing but punctuation, symbols, tags, or a script we do not read
        return True
    return _pick(_NOISE, language).parse(toks) is not None


def yes_no(text: str, language: str | None = None) -> bool | None:
    """The answer to a yes/no question, from how the utterance starts (after "אה", "um"...):
    True — "כן", "בטח", "סגור", "יאללה", "אחלה", "סבבה", "בשמחה", "sure", "sounds good";
    False — "לא", "לא ממש", "עזבי", "בטח שלא", "אין מצב", "not really", "nah", "forget it";
    None — anything else, including unsure ("לא יודע", "אולי", "maybe") and questions ("מה?").
    Without a language both lexicons are tried."""
    toks = _toks(text)
    choices = range(2) if language is None else ((0,) if is_hebrew(language) else (1,))
    for which in choices:
        table, leads = _ANSWERS[which], _ANSWER_LEADS[which]
        i = 0
        while i < len(toks) - 1 and toks[i] in leads:
            i += 1
        best: str | None = None
        for size in range(min(5, len(toks) - i), 0, -1):
            best = table.get(tuple(toks[i : i + size]))
            if best is not None:
                break
        if best is not None:
            return {"yes": True, "no": False}.get(best)
    return None


# What an agent's question asks for, by its words (most specific first). For the OpenAI brain,
# whose questions carry no label: the extractor's reading of a bare answer, and the
# recogniser's phrase hints for it, depend on what was just asked.
_ASKS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (slot, re.compile(pattern, re.IGNORECASE)) for slot, pattern in (
        ("deal", r"לקנות\s+או\s+לשכור|לקנייה\s+או\s+לשכירות|קנייה\s+או\s+שכירות|buy\s+or\s+(?:to\s+)?rent|rent\s+or\s+buy"),
        ("budget_ils", r"תקציב|כמה\s+(?:אתם\s+|את\s+|אתה\s+)?(?:מתכננים|מוכנים|רוצים)\s+(?:להוציא|לשלם)|מחיר|budget|spend|price\s+range"),
        ("property_type", r"סוג\s+(?:ה)?נכס|איזה\s+נכס|דירה\s+או\s+בית|what\s+kind\s+of\s+property|type\s+of\s+property|apartment\s+or\s+a\s+house"),
        ("rooms", r"כמה\s+חדרים|בכמה\s+חדרים|how\s+many\s+(?:bed)?rooms"),
        ("area", r"אזור|איזור|איפה|באיזו\s+עיר|באיזה\s+מקום|which\s+area|where|what\s+area|which\s+city|neighbou?rhood"),
        ("timeframe", r"תוך\s+כמה\s+זמן|מתי|לוח\s+זמנים|when|timeframe|how\s+soon"),
        ("phone", r"מספר|טלפון|number|phone"),
        ("name", r"איך\s+קוראים|מה\s+השם|שמך|your\s+name|who\s+am\s+i\s+speaking"),
        ("meeting", r"להיפגש|פגישה|נוח\s+(?:יותר|לך)|meet|suits\s+you|works\s+better"),
        ("confirm", r"לקבוע|נכון\?|book\s+it|right\?"),
    )
)


def asked_about(question: str | None) -> str | None:
    """The slot a question asks for ("מה התקציב בערך?" -> "budget_ils", "באיזה אזור?" ->
    "area", "Which area...?" -> "area"), or None. Only a question counts: the words of its
    last sentence ending in "?"."""
    if not question or "?" not in question:
        return None
    last = question[: question.rfind("?") + 1]
    cut = max(last.rfind(". ", 0, len(last) - 1), last.rfind("! ", 0, len(last) - 1))
    last = last[cut + 1 :] if cut >= 0 else last
    for slot, pattern in _ASKS:
        if pattern.search(last):
            return slot
    return None


def _is_number(tok: str) -> bool:
    return tok[:1].isdigit() or tok in _NUM_WORDS


def ends_mid_phrase(text: str, language: str) -> bool:
    """A partial transcript that stops where a phrase cannot end, so the caller is probably
    still talking: on a conjunction, preposition, article or possessive ("and", "of", "the",
    "my", "ו", "של", "עם", "עד", "כמו", "ש", "אז"), a Hebrew one-letter prefix standing alone
    ("ב", "ל", "וב"), a filler ("אממ", "אה", "um", "uh"), a trailing comma or dash, or a
    number still being said ("two million and", "מיליון ו", "two point", "between two").

    A bare number after "up to" / "עד" is complete ("up to two", "עד שני מיליון"), as is a
    half ("שלוש וחצי"). A question mark at the end means the caller finished a question."""
    stripped = text.rstrip()
    if not stripped or stripped.endswith("?"):
        return False
    if stripped.endswith((",", "-", "–", "—", "־")):
        return True
    toks = _toks(stripped)
    if not toks:
        return False
    last = toks[-1]
    prev = toks[-2] if len(toks) > 1 else None
    if last in _DECIMAL_POINT and prev is not None and _is_number(prev):
        return True  # "two point", "שתיים נקודה"
    if _is_number(last) and prev in _RANGE_START:
        return True  # "between two" (and ...), "בין שניים" (ל...)
    if is_hebrew(language):
        if last in _DANGLING_HE or _PREFIX_ONLY.match(last):
            return True
        if len(last) > 1 and last[0] == "ו" and last[1:] in _DANGLING_HE:
            return True  # "ועם", "ובין", "ואז"
        return bool(_FILLER_SOUND_HE.match(last))
    return last in _DANGLING_EN or bool(_FILLER_SOUND_EN.match(last))
