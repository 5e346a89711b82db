"""The conversational-cue lexicons (dialog.cues): whole-utterance judgements, both languages."""
from __future__ import annotations

import pytest

from dialog import cues, extract

HE, EN = "he-IL", "en-US"


@pytest.mark.parametrize("text, lang, expected", [
    # Hebrew, as Google writes it: with or without punctuation
    ("כן", HE, True), ("כן כן", HE, True), ("כן, כן.", HE, True), ("אהה", HE, True), ("אה", HE, True),
    ("אהא", HE, True), ("נכון", HE, True), ("בסדר", HE, True), ("אוקיי", HE, True), ("אוקי.", HE, True),
    ("OK", HE, True), ("יופי", HE, True), ("ממ", HE, True), ("מממ", HE, True), ("אההה", HE, True),
    ("כן נכון", HE, True), ("אוקיי, הבנתי", HE, True), ("ברור", HE, True), ("טוב", HE, True), ("סבבה", HE, True),
    ("כן, בחיפה", HE, False), ("כן אבל אני רוצה בית", HE, False), ("כן?", HE, False), ("לא", HE, False),
    ("בסדר, ומה עם התקציב", HE, False), ("", HE, False), ("רגע", HE, False), ("כן כן כן כן", HE, False),
    ("דירה", HE, False), ("מה?", HE, False),
    # English, any case
    ("okay", EN, True), ("OK.", EN, True), ("ok ok", EN, True), ("uh-huh", EN, True), ("Uh huh.", EN, True),
    ("mm", EN, True), ("Mm-hmm.", EN, True), ("mhm", EN, True), ("yeah", EN, True), ("Yes.", EN, True),
    ("right", EN, True), ("sure", EN, True), ("I see", EN, True), ("Yeah, I see.", EN, True), ("got it", EN, True),
    ("all right", EN, True), ("Hmm.", EN, True), ("yep yep", EN, True),
    ("yes but I want a house", EN, False), ("right?", EN, False), ("okay so what about Haifa", EN, False),
    ("no", EN, False), ("wait", EN, False), ("yes, two million", EN, False), ("", EN, False), ("...", EN, False),
    ("yeah yeah yeah yeah", EN, False),
])
def test_is_backchannel(text, lang, expected):
    assert cues.is_backchannel(text, lang) is expected


@pytest.mark.parametrize("text, lang, expected", [
    ("רגע", HE, True), ("שנייה", HE, True), ("שניה", HE, True), ("רגע רגע", HE, True), ("חכי", HE, True),
    ("רק רגע", HE, True), ("שנייה אחת", HE, True), ("סליחה, רגע", HE, True), ("לא לא, רגע", HE, True),
    ("אממ רגע", HE, True), ("תעצרי", HE, True), ("רגע, בחיפה", HE, False), ("רגע, אני רוצה בית", HE, False),
    ("סליחה", HE, False), ("כן", HE, False), ("", HE, False),
    ("wait", EN, True), ("Wait.", EN, True), ("hold on", EN, True), ("Hold on a sec", EN, True), ("one sec", EN, True),
    ("hang on", EN, True), ("stop", EN, True), ("just a moment", EN, True), ("sorry, wait", EN, True),
    ("no no, wait", EN, True), ("um, hang on a second", EN, True), ("wait, I meant Haifa", EN, False),
    ("stop calling me", EN, False), ("sorry", EN, False), ("okay", EN, False), ("", EN, False),
])
def test_holds_floor(text, lang, expected):
    assert cues.holds_floor(text, lang) is expected


@pytest.mark.parametrize("text, lang, expected", [
    ("רגע", HE, True), ("אממ", HE, True), ("סליחה", HE, True), ("אה", HE, True), ("סליחה?", HE, False),
    ("רגע, בחיפה", HE, False), ("כן", HE, False),
    ("wait...", EN, True), ("um", EN, True), ("sorry", EN, True), ("excuse me", EN, True), ("sorry?", EN, False),
    ("hold on", EN, True), ("okay", EN, False), ("in Haifa", EN, False),
])
def test_only_holds_floor(text, lang, expected):
    assert cues.only_holds_floor(text, lang) is expected


def test_extract_only_holds_floor_is_the_same_lexicon():
    for text in ("רגע", "wait...", "סליחה", "um", "hold on"):
        assert extract.only_holds_floor(text)
    for text in ("רגע, בחיפה", "sorry?", "yes", "שלום"):
        assert not extract.only_holds_floor(text)
    assert extract.only_holds_floor("רגע", "he-IL") and not extract.only_holds_floor("רגע", "en-US")


@pytest.mark.parametrize("text, lang, expected", [
    ("מה?", HE, True), ("מה", HE, True), ("סליחה?", HE, True), ("מה אמרת?", HE, True), ("לא שמעתי", HE, True),
    ("לא שמעתי טוב", HE, True), ("אפשר לחזור?", HE, True), ("אפשר לחזור על זה?", HE, True),
    ("תחזרי על זה", HE, True), ("סליחה, מה?", HE, True), ("לא הבנתי את השאלה", HE, True), ("עוד פעם?", HE, True),
    ("אממ, מה אמרת?", HE, True), ("לא שמעתי אותך, אפשר לחזור?", HE, True),
    ("מה המחיר?", HE, False), ("מה התקציב שלכם?", HE, False), ("סליחה", HE, False), ("לא", HE, False),
    ("מה יש לכם בחיפה?", HE, False), ("כן", HE, False), ("", HE, False), ("לא שמעתי על השכונה הזאת", HE, False),
    ("what?", EN, True), ("What", EN, True), ("sorry, what?", EN, True), ("pardon?", EN, True),
    ("Come again?", EN, True), ("say that again", EN, True), ("I didn't catch that", EN, True),
    ("I didn't catch that, sorry.", EN, True), ("could you say that again please?", EN, True),
    ("sorry?", EN, True), ("Excuse me?", EN, True), ("huh?", EN, True), ("can you repeat the question?", EN, True),
    ("I didn’t hear you", EN, True),
    ("what is the price?", EN, False), ("what do you have?", EN, False), ("sorry", EN, False),
    ("what about Haifa?", EN, False), ("excuse me", EN, False), ("yes", EN, False), ("", EN, False),
])
def test_asks_repeat(text, lang, expected):
    assert cues.asks_repeat(text, lang) is expected


@pytest.mark.parametrize("text, lang, expected", [
    ("you", EN, True), ("You.", EN, True), ("Thank you.", EN, True), ("Thanks for watching!", EN, True),
    ("Bye.", EN, True), (".", EN, True), ("...", EN, True), ("Hmm.", EN, True), ("♪", EN, True),
    ("♪ ♪", EN, True), ("[BLANK_AUDIO]", EN, True), ("(coughs)", EN, True), ("[Music]", EN, True),
    ("  ", EN, True), ("", EN, True), ("Thank you. Thank you.", EN, True), ("*door slams*", EN, True),
    ("Subtitles by the Amara.org community", EN, True), ("- -", EN, True),
    ("yes", EN, False), ("two million", EN, False), ("Thank you, I want a flat in Haifa", EN, False),
    ("okay", EN, False), ("no", EN, False), ("wait", EN, False), ("Haifa.", EN, False),
    ("תודה רבה.", HE, True), ("תודה.", HE, True), ("תודה שצפיתם!", HE, True), ("...", HE, True), ("?", HE, True),
    ("Thank you.", HE, True), ("[מוזיקה]", HE, True), ("כתוביות: מישהו", HE, True),
    ("כן", HE, False), ("תודה, אני מחפש דירה", HE, False), ("בחיפה", HE, False), ("רגע", HE, False),
    ("מיליון", HE, False),
])
def test_is_noise_transcript(text, lang, expected):
    assert cues.is_noise_transcript(text, lang) is expected


HE_MID = [
    # ends on a conjunction / preposition / prefix / filler / a number still being said
    ("אני מחפש דירה ו", True), ("בתל אביב או", True), ("דירה אבל", True), ("הדירה של", True), ("דירה עם", True),
    ("אני מחפש ב", True), ("משהו ל", True), ("רוצה לעבור מ", True), ("התקציב עד", True), ("משהו בין", True),
    ("משהו כמו", True), ("אני רוצה ש", True), ("אז", True), ("מיליון ו", True), ("שתיים נקודה", True),
    ("בין שניים", True), ("אני מחפש אממ", True), ("דירה בחיפה אה", True), ("בתל אביב ועם", True),
    ("אני רוצה את", True), ("תוך", True), ("דירה, וב", True), ("דירה בחיפה,", True), ("כי", True),
    ("אנחנו מחפשים גם", True),
    # complete
    ("שלוש וחצי", False), ("עד שניים", False), ("עד שני מיליון", False), ("דירה בחיפה", False),
    ("מיליון וחצי", False), ("ארבעה חדרים", False), ("כן", False), ("לא", False), ("תוך שנה", False),
    ("קוראים לי דנה", False), ("מיליון ושמונה מאות אלף", False), ("מה המחיר?", False), ("אז מה?", False),
    ("גם אני", False), ("מיליון בערך", False), ("", False), ("...", False), ("אני גר באזור", False),
    ("2.5 מיליון", False),
]
EN_MID = [
    ("I'm looking for an apartment and", True), ("in Tel Aviv or", True), ("yes but", True), ("somewhere in", True),
    ("a flat with", True), ("I want to move to", True), ("something for", True), ("close to the", True),
    ("I'd like a", True), ("two million and", True), ("a million and a", True), ("two point", True),
    ("between two", True), ("um, I think umm", True), ("I'm looking for uh", True), ("maybe eh", True),
    ("something like", True), ("up to", True), ("my budget is about", True), ("near my", True),
    ("a house, because", True), ("I'm", True), ("Haifa,", True), ("the budget is around", True),
    ("At", True), ("three rooms, or —", True),
    ("up to two", False), ("up to two million", False), ("three and a half", False), ("two point five", False),
    ("an apartment in Haifa", False), ("yes", False), ("no", False), ("I think so", False), ("within a year", False),
    ("my name is Dana", False), ("what about Holon?", False), ("and?", False), ("that's all", False),
    ("yes it is", False), ("1.5 million", False), ("", False), ("Thank you.", False), ("me neither", False),
]


@pytest.mark.parametrize("text, expected", HE_MID)
def test_ends_mid_phrase_hebrew(text, expected):
    assert cues.ends_mid_phrase(text, HE) is expected


@pytest.mark.parametrize("text, expected", EN_MID)
def test_ends_mid_phrase_english(text, expected):
    assert cues.ends_mid_phrase(text, EN) is expected


def test_the_tables_are_big_and_go_both_ways():
    for table in (HE_MID, EN_MID):
        assert len(table) >= 30
        assert sum(e for _, e in table) >= 12 and sum(not e for _, e in table) >= 12


def test_iw_is_hebrew_and_unknown_languages_are_english():
    assert cues.is_backchannel("כן", "iw-IL") and cues.is_backchannel("yes", "en-GB")
    assert cues.ends_mid_phrase("דירה ו", "iw") and not cues.ends_mid_phrase("דירה ו", "en-US")


@pytest.mark.parametrize("text, lang, expected", [
    ("תודה", HE, True), ("תודה רבה, ביי", HE, True), ("זהו, תודה", HE, True), ("לא תודה", HE, True),
    ("אוקיי תודה, יום טוב", HE, True), ("גם לך", HE, True), ("להתראות", HE, True), ("לא", HE, True),
    ("תודה, יש לי עוד שאלה", HE, False), ("רגע, עוד משהו", HE, False), ("כן", HE, False), ("מה?", HE, False),
    ("thanks, bye", EN, True), ("Thank you so much.", EN, True), ("okay, that's all", EN, True),
    ("no thanks", EN, True), ("you too, bye", EN, True), ("nope", EN, True),
    ("thanks, one more thing", EN, False), ("bye, wait", EN, False), ("yes", EN, False), ("what?", EN, False),
])
def test_is_closing(text, lang, expected):
    assert cues.is_closing(text, lang) is expected


def test_only_fillers():
    assert cues.only_fillers("אממ", "he-IL") and cues.only_fillers("אה... אממ", "he-IL")
    assert cues.only_fillers("umm", "en-US") and cues.only_fillers("uh, um", "en-US")
    assert not cues.only_fillers("אממ, בחיפה", "he-IL") and not cues.only_fillers("um, Haifa", "en-US")
    assert not cues.only_fillers("wait", "en-US") and not cues.only_fillers("", "en-US")
