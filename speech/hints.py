"""Phrase hints for the recognizers: Israeli place names and real-estate words callers say,
and, per question, what the answer to it sounds like.

:data:`HINTS_HE` / :data:`HINTS_EN` go with every stream (at the configured boost). On top of
them :func:`context_phrases` gives the phrases of the question just asked
(:class:`speech.base.SpeechContext`): the budget question boosts how Israelis say money
("מיליון שמונה", "שמונת אלפים לחודש"), the area question every city and neighbourhood we know
and, stronger still, the ones next to the area already given, and so on.

Google's class tokens ($OOV_CLASS_DIGIT_SEQUENCE, $TIME...) are locale-specific; Google's
table of supported class tokens (cloud.google.com/speech-to-text/docs/class-tokens) has no
Hebrew locale, so none are sent for iw-IL / he-IL. English gets the few it lists for en-US
that fit a question (numbers, phone numbers, times, months).
"""
from __future__ import annotations

from functools import lru_cache

from speech.base import SpeechContext

HINTS_HE = (
    # cities and areas
    "תל אביב", "ירושלים", "חיפה", "רמת גן", "גבעתיים", "הרצליה", "רעננה", "כפר סבא",
    "פתח תקווה", "ראשון לציון", "חולון", "בת ים", "נתניה", "אשדוד", "אשקלון", "באר שבע",
    "מודיעין", "רחובות", "נס ציונה", "הוד השרון", "ראש העין", "יהוד", "קריית אונו",
    "רמת השרון", "בני ברק", "גבעת שמואל", "חדרה", "זכרון יעקב", "קיסריה", "עפולה", "נהריה",
    "כרמיאל", "טבריה", "אילת", "יפו", "הצפון הישן", "פלורנטין", "רמת אביב",
    # property and deal words
    "דירה", "דירת גן", "פנטהאוז", "דופלקס", "בית פרטי", "קוטג'", "דו משפחתי", "מגרש",
    "חדרים", "חדר וחצי", "שלושה חדרים", "ארבעה חדרים", "מרפסת", "חניה", "ממ\"ד", "מעלית",
    "מחסן", "קומה", "משופצת", "חדשה מקבלן", "שכירות", "קנייה", "משכנתא", "תקציב",
    "מיליון", "אלף שקל", "שקלים", "חודש", "שנה", "מיידי", "פגישה", "וואטסאפ",
)

HINTS_EN = (
    "Tel Aviv", "Jerusalem", "Haifa", "Ramat Gan", "Givatayim", "Herzliya", "Ra'anana",
    "Kfar Saba", "Petah Tikva", "Rishon LeZion", "Holon", "Bat Yam", "Netanya", "Ashdod",
    "Beersheba", "Modiin", "Rehovot", "apartment", "penthouse", "duplex", "cottage",
    "garden apartment", "rooms", "balcony", "parking", "elevator", "rent", "buy", "mortgage",
    "budget", "million", "shekels", "meeting", "WhatsApp",
)

# The boosts (Google accepts 0..20): the question's own phrases above the standing hints, the
# places next to the one already named above those.
QUESTION_BOOST = 15.0
NEAR_BOOST = 18.0

_HE_NUMBERS_M = ("שניים", "שלושה", "ארבעה", "חמישה", "שישה", "שבעה", "שמונה", "תשעה")
_HE_NUMBERS_F = ("אחת", "שתיים", "שלוש", "ארבע", "חמש", "שש", "שבע", "שמונה", "תשע", "עשר")

_QUESTIONS_HE: dict[str, tuple[str, ...]] = {
    "budget_ils": (
        "מיליון", "מיליון וחצי", "שני מיליון", "שניים וחצי מיליון", "שלושה מיליון", "שלושה וחצי מיליון",
        "ארבעה מיליון", "חמישה מיליון", "חצי מיליון", "מיליון שמונה", "מיליון ושמונה מאות", "מיליון מאתיים",
        "מיליון שלוש מאות", "מיליון ארבע מאות", "מיליון שש מאות", "מיליון שבע מאות", "מיליון תשע מאות",
        "שמונה מאות אלף", "תשע מאות אלף", "שבע מאות אלף", "שש מאות אלף", "מאות אלף", "אלף שקל", "אלפים",
        "שלושת אלפים", "ארבעת אלפים", "חמשת אלפים", "ששת אלפים", "שבעת אלפים", "שמונת אלפים", "תשעת אלפים",
        "עשרת אלפים", "לחודש", "בחודש", "שקל", "שקלים", "ש\"ח", "בערך", "בסביבות", "מקסימום", "עד",
        "משכנתא", "הון עצמי", "לקנייה", "לשכירות",
    ),
    "deal": ("לקנות", "לקנייה", "קנייה", "לשכור", "לשכירות", "שכירות", "רכישה", "להשכרה", "משכנתא"),
    "rooms": (
        "חדר", "חדרים", "חדר וחצי", "שני חדרים", "שלושה חדרים", "שלושה וחצי חדרים", "ארבעה חדרים",
        "ארבעה וחצי חדרים", "חמישה חדרים", "חמישה וחצי חדרים", "שישה חדרים", "חדרי שינה", "וחצי",
    ),
    "property_type": (
        "דירה", "דירת גן", "פנטהאוז", "דופלקס", "קוטג'", "בית פרטי", "דו משפחתי", "יחידת דיור", "מגרש",
        "משרד", "סטודיו", "וילה", "דירת גג", "צמוד קרקע", "חדרים", "שלושה חדרים", "ארבעה חדרים",
        "ארבעה וחצי חדרים", "חמישה חדרים",
    ),
    "timeframe": (
        "מיד", "מיידי", "תוך חודש", "תוך חודשיים", "תוך שלושה חודשים", "חצי שנה", "תוך שנה", "שנתיים",
        "אחרי החגים", "עד סוף השנה", "בקיץ", "אחרי פסח", "בהקדם", "כמה שיותר מהר", "אין לחץ", "גמיש",
        "חודשים", "שבועות",
    ),
    "name": ("קוראים לי", "שמי", "השם שלי"),
    "phone": ("אפס", *_HE_NUMBERS_F, "כן", "לא", "נכון", "המספר", "מספר אחר"),
    "confirm": ("כן", "לא", "נכון", "בדיוק", "בטח", "סגור", "יאללה", "לא ממש", "עזבי"),
    "meeting": (
        "מחר", "היום", "ביום ראשון", "ביום שני", "ביום שלישי", "ביום רביעי", "ביום חמישי", "ביום שישי",
        "בבוקר", "בצהריים", "אחר הצהריים", "הראשון", "השני", "בעשר", "בתשע", "באחת", "בארבע", "מתאים",
    ),
    "area": ("באזור", "ליד", "בשכונת"),
}

_QUESTIONS_EN: dict[str, tuple[str, ...]] = {
    "budget_ils": ("million", "a million and a half", "two million", "thousand", "shekels", "a month", "per month",
                   "around", "up to", "mortgage"),
    "deal": ("buy", "to buy", "rent", "to rent", "renting", "buying", "purchase"),
    "rooms": ("rooms", "bedrooms", "two rooms", "three rooms", "four rooms", "five rooms", "and a half"),
    "property_type": ("apartment", "garden apartment", "penthouse", "duplex", "cottage", "private house",
                      "house", "studio", "office", "plot"),
    "timeframe": ("right away", "as soon as possible", "within a month", "months", "a year", "after the holidays",
                  "by the end of the year", "no rush"),
    "name": ("my name is",),
    "phone": ("zero", "oh", "yes", "no", "number"),
    "confirm": ("yes", "no", "sure", "correct", "not really"),
    "meeting": ("tomorrow", "today", "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                "morning", "afternoon", "the first one", "the second one"),
    "area": ("in", "near", "neighborhood"),
}

# Google's class tokens per locale (its class-token table); no Hebrew locale is listed there.
CLASS_TOKENS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "budget_ils": ("$OPERAND",),
        "phone": ("$FULLPHONENUM", "$OOV_CLASS_DIGIT_SEQUENCE"),
        "meeting": ("$TIME",),
        "timeframe": ("$MONTH",),
    },
}

PhraseGroup = tuple[tuple[str, ...], float]


def _base(language: str) -> str:
    return language.split("-")[0].lower()


def is_hebrew(language: str) -> bool:
    return _base(language) in ("he", "iw")


def hints_for(language: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    return (HINTS_HE if is_hebrew(language) else HINTS_EN) + tuple(extra)


@lru_cache(maxsize=4)
def _places(hebrew: bool) -> tuple[str, ...]:
    from dialog.places import PLACES  # data only; speech may read dialog's tables

    names: list[str] = []
    for place in PLACES:
        names.append(place.he if hebrew else place.en)
    return tuple(dict.fromkeys(names))


def context_phrases(language: str, context: SpeechContext | None, class_tokens: bool = True) -> list[PhraseGroup]:
    """The phrase groups (phrases, boost) the answer to ``context``'s question is likely to use,
    besides the standing hints; empty when nothing in particular is expected."""
    if context is None or context.expecting is None:
        return []
    hebrew = is_hebrew(language)
    key = context.expecting
    if key == "phone_number":
        key = "phone"
    table = _QUESTIONS_HE if hebrew else _QUESTIONS_EN
    phrases = list(table.get(key, ()))
    if key == "area":
        phrases += _places(hebrew)
    groups: list[PhraseGroup] = []
    if key == "area" and context.near:
        groups.append((tuple(dict.fromkeys(context.near)), NEAR_BOOST))
    if phrases:
        groups.append((tuple(dict.fromkeys(phrases)), QUESTION_BOOST))
    tokens = CLASS_TOKENS.get(_base(language), {}).get(key, ()) if class_tokens else ()
    if tokens:
        groups.append((tokens, QUESTION_BOOST))
    return groups
