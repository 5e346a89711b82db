"""Spoken forms for the voice (speech/spoken.py): the table, the properties, the wrapper.

Each row: the language, what the agent wrote (what the transcript keeps), what the
synthesizer must be given.
"""
from __future__ import annotations

import re

import pytest
import trio

from speech.base import Synthesizer
from speech.spoken import spoken, spoken_words
from speech.spoken_tts import SpokenSynthesizer

CASES: list[tuple[str, str, str]] = [
    ('he-IL', '1 חדר', 'חדר אחד'),
    ('he-IL', '2 חדרים', 'שני חדרים'),
    ('he-IL', '3 חדרים', 'שלושה חדרים'),
    ('he-IL', '4 חדרים', 'ארבעה חדרים'),
    ('he-IL', '5 חדרים', 'חמישה חדרים'),
    ('he-IL', '6 חדרים', 'שישה חדרים'),
    ('he-IL', '7 חדרים', 'שבעה חדרים'),
    ('he-IL', '8 חדרים', 'שמונה חדרים'),
    ('he-IL', '9 חדרים', 'תשעה חדרים'),
    ('he-IL', '10 חדרים', 'עשרה חדרים'),
    ('he-IL', '11 חדרים', 'אחד עשר חדרים'),
    ('he-IL', '12 חדרים', 'שנים עשר חדרים'),
    ('he-IL', '1 דירה', 'דירה אחת'),
    ('he-IL', '2 דירות', 'שתי דירות'),
    ('he-IL', '3 דירות', 'שלוש דירות'),
    ('he-IL', '4 דירות', 'ארבע דירות'),
    ('he-IL', '5 דירות', 'חמש דירות'),
    ('he-IL', '6 דירות', 'שש דירות'),
    ('he-IL', '7 דירות', 'שבע דירות'),
    ('he-IL', '8 דירות', 'שמונה דירות'),
    ('he-IL', '9 דירות', 'תשע דירות'),
    ('he-IL', '10 דירות', 'עשר דירות'),
    ('he-IL', '11 דירות', 'אחת עשרה דירות'),
    ('he-IL', '12 דירות', 'שתים עשרה דירות'),
    ('he-IL', '20 דירות', 'עשרים דירות'),
    ('he-IL', '21 דירות', 'עשרים ואחת דירות'),
    ('he-IL', '22 חדרים', 'עשרים ושניים חדרים'),
    ('he-IL', '3.5 חדרים', 'שלושה וחצי חדרים'),
    ('he-IL', '4.5 חדרים', 'ארבעה וחצי חדרים'),
    ('he-IL', '2.5 חדרים', 'שניים וחצי חדרים'),
    ('he-IL', '1.5 חדרים', 'חדר וחצי'),
    ('he-IL', '3 וחצי חדרים', 'שלושה וחצי חדרים'),
    ('he-IL', 'דירת 4 חדרים בתל אביב', 'דירת ארבעה חדרים בתל אביב'),
    ('he-IL', 'דירת 5 חדרים', 'דירת חמישה חדרים'),
    ('he-IL', '3 חודשים', 'שלושה חודשים'),
    ('he-IL', 'תוך 3 חודשים', 'תוך שלושה חודשים'),
    ('he-IL', '2 שנים', 'שתי שנים'),
    ('he-IL', '3 שנים', 'שלוש שנים'),
    ('he-IL', '5 ימים', 'חמישה ימים'),
    ('he-IL', '2 שבועות', 'שני שבועות'),
    ('he-IL', '3 קומות', 'שלוש קומות'),
    ('he-IL', '4 שעות', 'ארבע שעות'),
    ('he-IL', '10 דקות', 'עשר דקות'),
    ('he-IL', '2 פגישות', 'שתי פגישות'),
    ('he-IL', '3 אפשרויות', 'שלוש אפשרויות'),
    ('he-IL', '2 מרפסות', 'שתי מרפסות'),
    ('he-IL', '2 חניות', 'שתי חניות'),
    ('he-IL', '3 ילדים', 'שלושה ילדים'),
    ('he-IL', '80 מ"ר', 'שמונים מטר'),
    ('he-IL', '120 מטר', 'מאה ועשרים מטר'),
    ('he-IL', '5%', 'חמישה אחוז'),
    ('he-IL', 'עד 1,800,000 ₪.', 'עד מיליון שמונה מאות אלף שקל.'),
    ('he-IL', '1,800,000 ₪', 'מיליון שמונה מאות אלף שקל'),
    ('he-IL', '₪1,800,000', 'מיליון שמונה מאות אלף שקל'),
    ('he-IL', '2,000,000 ₪', 'שני מיליון שקל'),
    ('he-IL', '2,500,000 ₪', 'שניים וחצי מיליון שקל'),
    ('he-IL', '1,500,000 ₪', 'מיליון וחצי שקל'),
    ('he-IL', '3,200,000 ש"ח', 'שלושה מיליון מאתיים אלף שקל'),
    ('he-IL', '950,000 ₪', 'תשע מאות וחמישים אלף שקל'),
    ('he-IL', '800,000 ₪', 'שמונה מאות אלף שקל'),
    ('he-IL', '7,500 ₪ לחודש', 'שבעת אלפים וחמש מאות שקל לחודש'),
    ('he-IL', '8,000 ₪', 'שמונת אלפים שקל'),
    ('he-IL', '4,500 שקל', 'ארבעת אלפים וחמש מאות שקל'),
    ('he-IL', '12,000 שקל', 'שנים עשר אלף שקל'),
    ('he-IL', '25 ₪', 'עשרים וחמישה שקל'),
    ('he-IL', '1 ₪', 'שקל אחד'),
    ('he-IL', '2.5 מיליון', 'שניים וחצי מיליון'),
    ('he-IL', '1.5 מיליון', 'מיליון וחצי'),
    ('he-IL', '1.8 מיליון', 'מיליון שמונה מאות אלף'),
    ('he-IL', '2 מיליון', 'שני מיליון'),
    ('he-IL', '3 מיליון', 'שלושה מיליון'),
    ('he-IL', '10 מיליון', 'עשרה מיליון'),
    ('he-IL', '1 מיליון', 'מיליון'),
    ('he-IL', '1.25 מיליון', 'מיליון מאתיים וחמישים אלף'),
    ('he-IL', 'עד 2 מיליון שקל', 'עד שני מיליון שקל'),
    ('he-IL', '8 אלף', 'שמונת אלפים'),
    ('he-IL', '2 אלף', 'אלפיים'),
    ('he-IL', '3 אלף', 'שלושת אלפים'),
    ('he-IL', '10 אלף', 'עשרת אלפים'),
    ('he-IL', '12 אלף', 'שנים עשר אלף'),
    ('he-IL', '800 אלף', 'שמונה מאות אלף'),
    ('he-IL', '7.5 אלף', 'שבעת אלפים וחמש מאות'),
    ('he-IL', '1,250,000', 'מיליון מאתיים וחמישים אלף'),
    ('he-IL', '1,000,000', 'מיליון'),
    ('he-IL', '100,000', 'מאה אלף'),
    ('he-IL', '250,000', 'מאתיים וחמישים אלף'),
    ('he-IL', '1500', 'אלף וחמש מאות'),
    ('he-IL', '2026', 'אלפיים עשרים ושש'),
    ('he-IL', '120', 'מאה ועשרים'),
    ('he-IL', '105', 'מאה וחמש'),
    ('he-IL', '115', 'מאה וחמש עשרה'),
    ('he-IL', '999', 'תשע מאות תשעים ותשע'),
    ('he-IL', '0', 'אפס'),
    ('he-IL', '0.5', 'חצי'),
    ('he-IL', '10:00', 'עשר בבוקר'),
    ('he-IL', '9:00', 'תשע בבוקר'),
    ('he-IL', '11:00', 'אחת עשרה בבוקר'),
    ('he-IL', '12:00', 'שתים עשרה בצהריים'),
    ('he-IL', '13:00', 'אחת בצהריים'),
    ('he-IL', '14:00', 'שתיים בצהריים'),
    ('he-IL', '16:00', 'ארבע אחר הצהריים'),
    ('he-IL', '17:30', 'חמש וחצי אחר הצהריים'),
    ('he-IL', '18:00', 'שש בערב'),
    ('he-IL', '19:00', 'שבע בערב'),
    ('he-IL', '21:00', 'תשע בערב'),
    ('he-IL', '22:00', 'עשר בלילה'),
    ('he-IL', '00:00', 'חצות'),
    ('he-IL', '10:30', 'עשר וחצי בבוקר'),
    ('he-IL', '10:15', 'עשר ורבע בבוקר'),
    ('he-IL', '9:45', 'רבע לעשר בבוקר'),
    ('he-IL', '10:20', 'עשר ועשרים בבוקר'),
    ('he-IL', 'מחר ב-10:00', 'מחר בעשר בבוקר'),
    ('he-IL', 'ביום חמישי ב-16:00', 'ביום חמישי בארבע אחר הצהריים'),
    ('he-IL', 'בשעה 13:00', 'בשעה אחת בצהריים'),
    ('he-IL', '10:00-13:00', 'מעשר בבוקר עד אחת בצהריים'),
    ('he-IL', '25.11', 'עשרים וחמישה בנובמבר'),
    ('he-IL', '01.12', 'אחד בדצמבר'),
    ('he-IL', '25/11/2026', 'עשרים וחמישה בנובמבר אלפיים עשרים ושש'),
    ('he-IL', '1/1', 'אחד בינואר'),
    ('he-IL', '15.03.2027', 'חמישה עשר במרץ אלפיים עשרים ושבע'),
    ('he-IL', "ביום ה'", 'ביום חמישי'),
    ('he-IL', "יום א'", 'יום ראשון'),
    ('he-IL', "ביום ו' בבוקר", 'ביום שישי בבוקר'),
    ('he-IL', '050-123-4567', 'אפס חמש אפס, אחת שתיים שלוש, ארבע חמש שש שבע'),
    ('he-IL', '0501234567', 'אפס חמש אפס, אחת שתיים שלוש, ארבע חמש שש שבע'),
    ('he-IL', '+972501234567', 'אפס חמש אפס, אחת שתיים שלוש, ארבע חמש שש שבע'),
    ('he-IL', '03-6123456', 'אפס שלוש, שש אחת שתיים, שלוש ארבע חמש שש'),
    ('he-IL', '052-7654321', 'אפס חמש שתיים, שבע שש חמש, ארבע שלוש שתיים אחת'),
    ('he-IL', 'המספר שמסתיים ב-4 5 6 7 מתאים לחזרה?', 'המספר שמסתיים בארבע חמש שש שבע מתאים לחזרה?'),
    ('he-IL', 'לאיזה מספר אפשר לחזור? 054-111-2222', 'לאיזה מספר אפשר לחזור? אפס חמש ארבע, אחת אחת אחת, שתיים שתיים שתיים שתיים'),
    ('he-IL', 'קומה 3', 'קומה שלישית'),
    ('he-IL', 'בקומה 1', 'בקומה ראשונה'),
    ('he-IL', 'בקומה 2', 'בקומה שנייה'),
    ('he-IL', 'קומה 10', 'קומה עשירית'),
    ('he-IL', 'קומה 12', 'קומה שתים עשרה'),
    ('he-IL', 'ת"א', 'תל אביב'),
    ('he-IL', 'בת"א', 'בתל אביב'),
    ('he-IL', 'ר"ג', 'רמת גן'),
    ('he-IL', 'לר"ג', 'לרמת גן'),
    ('he-IL', 'פ"ת', 'פתח תקווה'),
    ('he-IL', 'ב"ש', 'באר שבע'),
    ('he-IL', 'ראשל"צ', 'ראשון לציון'),
    ('he-IL', 'ממ"ד', 'ממד'),
    ('he-IL', 'אח"כ', 'אחר כך'),
    ('he-IL', 'ש"ח', 'שקל'),
    ('he-IL', 'נדל"ן', 'נדלן'),
    ('he-IL', 'שלום, מדברת נועה מ-AgentLocator. באיזה אזור מחפשים נכס?', "שלום, מדברת נועה מאייג'נט לוקייטור. באיזה אזור מחפשים נכס?"),
    ('he-IL', 'AgentLocator', "אייג'נט לוקייטור"),
    ('he-IL', 'WhatsApp', 'וואטסאפ'),
    ('he-IL', 'בוואטסאפ', 'בוואטסאפ'),
    ('he-IL', 'SMS', 'אס אם אס'),
    ('he-IL', 'Google', 'גוגל'),
    ('he-IL', 'Zoom', 'זום'),
    ('he-IL', 'Waze', 'וייז'),
    ('he-IL', 'email', 'אימייל'),
    ('he-IL', 'CRM', 'סי אר אם'),
    ('he-IL', 'OK', 'אוקיי'),
    ('he-IL', 'Yad2', 'יד שתיים'),
    ('he-IL', 'Madlan', 'מדלן'),
    ('he-IL', 'zoom meeting', 'זום מיטינג'),
    ('he-IL', '3-4 חדרים', 'שלושה עד ארבעה חדרים'),
    ('he-IL', '2-3 דירות', 'שתיים עד שלוש דירות'),
    ('he-IL', '4-חדרים', 'ארבעה חדרים'),
    ('he-IL', 'מעולה, דירת 4 חדרים ברמת גן. מה התקציב בערך?', 'מעולה, דירת ארבעה חדרים ברמת גן. מה התקציב בערך?'),
    ('he-IL', 'מעולה, עד 2 מיליון. תוך כמה זמן אתם מתכננים לעבור?', 'מעולה, עד שני מיליון. תוך כמה זמן אתם מתכננים לעבור?'),
    ('he-IL', 'קבענו מחר בעשר: דירת 4.5 חדרים בכפר סבא, עד 2.5 מיליון.', 'קבענו מחר בעשר: דירת ארבעה וחצי חדרים בכפר סבא, עד שניים וחצי מיליון.'),
    ('he-IL', 'אפשר להיפגש מחר ב-10:00 או ביום שישי ב-9:00?', 'אפשר להיפגש מחר בעשר בבוקר או ביום שישי בתשע בבוקר?'),
    ('he-IL', 'רשמתי, עד 8 אלף לחודש.', 'רשמתי, עד שמונת אלפים לחודש.'),
    ('he-IL', 'ב-3 חדרים', 'בשלושה חדרים'),
    ('he-IL', 'ל-2 דירות', 'לשתי דירות'),
    ('he-IL', 'מ-5 חדרים', 'מחמישה חדרים'),
    ('he-IL', 'עם 3 מרפסות', 'עם שלוש מרפסות'),
    ('en-US', '1 room', 'one room'),
    ('en-US', '3 rooms', 'three rooms'),
    ('en-US', '3.5 rooms', 'three and a half rooms'),
    ('en-US', '2.5 million', 'two and a half million'),
    ('en-US', '1.8 million', 'one point eight million'),
    ('en-US', 'up to 1.8 million shekels', 'up to one point eight million shekels'),
    ('en-US', '1,800,000 ₪', 'one million eight hundred thousand shekels'),
    ('en-US', '₪1,800,000', 'one million eight hundred thousand shekels'),
    ('en-US', '8,000 ₪ a month', 'eight thousand shekels a month'),
    ('en-US', '$300', 'three hundred dollars'),
    ('en-US', '5%', 'five percent'),
    ('en-US', '10:00', 'ten AM'),
    ('en-US', '13:00', 'one PM'),
    ('en-US', '10:30', 'ten thirty AM'),
    ('en-US', '9:05', 'nine oh five AM'),
    ('en-US', '12:00', 'noon'),
    ('en-US', '00:00', 'midnight'),
    ('en-US', 'tomorrow at 10 am or Friday at 9 am?', 'tomorrow at ten AM or Friday at nine AM?'),
    ('en-US', 'Booked for 10:00.', 'Booked for ten AM.'),
    ('en-US', '10:00 am', 'ten AM'),
    ('en-US', '10:00-13:00', 'from ten AM to one PM'),
    ('en-US', 'Can we reach you on the number ending 4 5 6 7?', 'Can we reach you on the number ending four five six seven?'),
    ('en-US', '050-123-4567', 'oh five oh, one two three, four five six seven'),
    ('en-US', '+972501234567', 'oh five oh, one two three, four five six seven'),
    ('en-US', 'the 3rd floor', 'the third floor'),
    ('en-US', 'the 21st', 'the twenty-first'),
    ('en-US', 'the 2nd', 'the second'),
    ('en-US', 'the 12th', 'the twelfth'),
    ('en-US', '25/11/2026', 'November twenty-fifth, twenty twenty-six'),
    ('en-US', '25.11', 'November twenty-fifth'),
    ('en-US', '80 sqm', 'eighty square meters'),
    ('en-US', 'a 4-room apartment', 'a four-room apartment'),
    ('en-US', '3-4 rooms', 'three to four rooms'),
    ('en-US', 'Hi, this is Noa from AgentLocator. Which area are you looking in?', 'Hi, this is Noa from Agent Locator. Which area are you looking in?'),
    ('en-US', 'WhatsApp', 'WhatsApp'),
    ('en-US', '1,250,000', 'one million two hundred fifty thousand'),
    ('en-US', '1500', 'one thousand five hundred'),
    ('en-US', '21', 'twenty-one'),
    ('en-US', '0.5', 'a half'),
    ('en-US', '100', 'one hundred'),
    ('en-US', '115', 'one hundred fifteen'),
]


def test_the_table_is_big_and_bilingual():
    assert len(CASES) >= 150
    assert sum(lang == "he-IL" for lang, *_ in CASES) >= 120 and sum(lang == "en-US" for lang, *_ in CASES) >= 30


@pytest.mark.parametrize("language, written, said", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_spoken_form(language, written, said):
    assert spoken(written, language) == said


@pytest.mark.parametrize("language, written, said", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_no_digits_symbols_or_latin_reach_a_hebrew_voice(language, written, said):
    if language == "he-IL":
        assert not re.search(r"[0-9A-Za-z₪$%]", said), said
    else:
        assert not re.search(r"[0-9₪$%]", said), said


@pytest.mark.parametrize("language, written, said", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_spoken_form_is_stable(language, written, said):
    """Saying it twice changes nothing: a spoken form is its own spoken form."""
    assert spoken(said, language) == said


@pytest.mark.parametrize("language, written, said", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_the_tail_of_a_line_is_said_as_the_tail_of_the_line(language, written, said):
    """A reply resumed from its k-th written word (server/reply.py, after a barge-in) says what
    the whole reply said from there, unless that word looks back or was swallowed."""
    words = spoken_words(written, language)
    for k in range(1, len(words)):
        if words[k].looks_back or words[k].swallowed:
            continue
        tail = " ".join(w.written for w in words[k:])
        expected = " ".join(w.said for w in words[k:] if w.said)
        assert spoken(tail, language) == expected, (written, k)
        assert said.endswith(expected)


class Recording(Synthesizer):
    name = "recording"

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.warmed: list[str] = []

    async def warm(self, lines):
        self.warmed.extend(lines)

    async def synthesize(self, text):
        self.texts.append(text)
        yield b"\x00\x00" * 80


async def test_the_wrapper_feeds_the_spoken_form_and_warms_the_same_text():
    inner = Recording()
    synth = SpokenSynthesizer(inner, "he-IL")
    assert synth.name == "recording"
    await synth.warm(["שלום, מדברת נועה מ-AgentLocator. באיזה אזור מחפשים נכס?", "רק רגע."])
    chunks = [c async for c in synth.synthesize("שלום, מדברת נועה מ-AgentLocator. באיזה אזור מחפשים נכס?")]
    assert chunks and inner.texts == ["שלום, מדברת נועה מאייג'נט לוקייטור. באיזה אזור מחפשים נכס?"]
    assert inner.warmed == [inner.texts[0], "רק רגע."]  # the cache key is the text later asked for
