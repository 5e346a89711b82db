"""What the voice says for what the agent wrote: the spoken form of a line (pure, no I/O).

The brain writes for the transcript and the dashboard ("דירת 4 חדרים", "עד 1,800,000 ₪",
"מחר ב-10:00", "המספר שמסתיים ב-4 5 6 7", "AgentLocator"); a synthesizer left to guess
reads digits in the wrong gender, spells the shekel sign or reads the brand letter by
letter. :func:`spoken` rewrites a line into words, he-IL and en-US:

- cardinals agree with the counted noun: "3 חדרים" -> "שלושה חדרים", "3 דירות" -> "שלוש
  דירות", "2 חדרים" -> "שני חדרים"; halves: "3.5 חדרים" -> "שלושה וחצי חדרים";
- prices: "1,800,000 ₪" -> "מיליון שמונה מאות אלף שקל", "2.5 מיליון" -> "שניים וחצי
  מיליון", "1.5 מיליון" -> "מיליון וחצי", "8 אלף" -> "שמונת אלפים", "5%" -> "חמישה אחוז";
- times: "10:00" -> "עשר בבוקר", "13:00" -> "אחת בצהריים", "ב-16:30" -> "בארבע וחצי אחר
  הצהריים"; dates: "25.11" -> "עשרים וחמישה בנובמבר"; weekdays "יום ה'" -> "יום חמישי";
- phone numbers digit by digit ("050-123-4567" -> "אפס חמש אפס, אחת שתיים שלוש, ...");
- floors as ordinals ("קומה 3" -> "קומה שלישית");
- abbreviations ('ת"א' -> "תל אביב", 'ר"ג' -> "רמת גן", 'מ"ר' -> "מטר", 'ש"ח' -> "שקל");
- the brand and other Latin words in Hebrew letters ("AgentLocator" -> "אייג'נט לוקייטור",
  "WhatsApp" -> "וואטסאפ"); English lines get the English equivalents ("ten AM", "one
  million eight hundred thousand shekels", "four five six seven", "Agent Locator").

Word by word, looking only ahead (the counted noun follows its number), so the spoken form
of a line's tail is the tail of the line's spoken form: a reply resumed after a barge-in
from its Nth written word says the same words the whole reply would have said from there.
The few exceptions look one word back (a floor number after "קומה", a weekday letter after
"יום") or swallow the next word ("1.5 מיליון" -> "מיליון וחצי"); :func:`spoken_words` marks
them. Only the audio uses this form: transcripts and the dashboard keep the written one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


def is_hebrew(language: str) -> bool:
    return language.split("-")[0].lower() in ("he", "iw")


@dataclass(frozen=True, slots=True)
class Word:
    written: str
    said: str  # "" when an earlier word said it ("1.5 מיליון": "מיליון" is said by "1.5")
    looks_back: bool = False  # its spoken form depends on the word before it
    swallowed: bool = False  # said by the word before it


def spoken(text: str, language: str) -> str:
    """``text`` as the synthesizer should voice it (see the module doc)."""
    return " ".join(w.said for w in spoken_words(text, language) if w.said)


def spoken_words(text: str, language: str) -> list[Word]:
    """Word by word (whitespace-separated), what each written word becomes."""
    words = text.split()
    hebrew = is_hebrew(language)
    out: list[Word] = []
    skip = 0
    for i, word in enumerate(words):
        if skip:
            out.append(Word(word, "", swallowed=True))
            skip -= 1
            continue
        prev = words[i - 1] if i else None
        said, consumed, back = (_he_word if hebrew else _en_word)(word, words[i + 1 :], prev)
        out.append(Word(word, said, looks_back=back))
        skip = consumed
    return out


# -- shared ------------------------------------------------------------------------------------

_LEAD = re.compile(r"^[\"'(\[“„«]+")
_TRAIL = re.compile(r"[.,;:!?)\]”»…\"']+$")
_NUMBER = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^\d+(?:\.\d+)?$")


def _split_punct(word: str) -> tuple[str, str, str]:
    lead = _LEAD.match(word)
    head = lead.group(0) if lead else ""
    rest = word[len(head) :]
    # keep a closing geresh / gershayim that belongs to the word ("ה'", 'ת"א')
    trail = _TRAIL.search(rest)
    tail = trail.group(0) if trail else ""
    core = rest[: len(rest) - len(tail)]
    if tail and core and re.search(r"[\u05d0-\u05ea]$", core) and tail[0] in "'\"" and (
        len(tail) == 1 or tail[1] not in "'\""
    ):
        core, tail = core + tail[0], tail[1:]
    return head, core, tail


def _number_value(core: str) -> float | None:
    if not _NUMBER.match(core):
        return None
    return float(core.replace(",", ""))


def _phone_digits(core: str) -> list[str] | None:
    """An Israeli phone number as its digit groups ("050-123-4567", "+972501234567", "03-6123456")."""
    if not re.fullmatch(r"\+?[\d-]{9,16}", core):
        return None
    digits = re.sub(r"\D", "", core)
    if digits.startswith("972") and core.startswith(("+", "972")):
        digits = "0" + digits[3:]
    if not re.fullmatch(r"0(?:5\d{8}|[2-9]\d{7}|7\d{8})", digits):
        return None
    if "-" in core and not core.startswith("+"):
        groups = [g for g in core.split("-") if g]
        if "".join(groups) == digits:
            out: list[str] = []
            for g in groups:  # a 7-digit block is said 3 + 4, the way people read it out
                out.extend([g[:3], g[3:]] if len(g) > 4 else [g])
            return out
    if digits.startswith("05") or digits.startswith("07"):
        return [digits[:3], digits[3:6], digits[6:]]
    return [digits[:2], digits[2:5], digits[5:]]


# -- Hebrew ------------------------------------------------------------------------------------

_F = ("אפס", "אחת", "שתיים", "שלוש", "ארבע", "חמש", "שש", "שבע", "שמונה", "תשע")
_M = ("אפס", "אחד", "שניים", "שלושה", "ארבעה", "חמישה", "שישה", "שבעה", "שמונה", "תשעה")
_TEENS_F = ("עשר", "אחת עשרה", "שתים עשרה", "שלוש עשרה", "ארבע עשרה", "חמש עשרה", "שש עשרה", "שבע עשרה",
            "שמונה עשרה", "תשע עשרה")
_TEENS_M = ("עשרה", "אחד עשר", "שנים עשר", "שלושה עשר", "ארבעה עשר", "חמישה עשר", "שישה עשר", "שבעה עשר",
            "שמונה עשר", "תשעה עשר")
_TENS = ("", "", "עשרים", "שלושים", "ארבעים", "חמישים", "שישים", "שבעים", "שמונים", "תשעים")
_HUNDREDS = ("", "מאה", "מאתיים", "שלוש מאות", "ארבע מאות", "חמש מאות", "שש מאות", "שבע מאות", "שמונה מאות",
             "תשע מאות")
_THOUSANDS = ("", "אלף", "אלפיים", "שלושת אלפים", "ארבעת אלפים", "חמשת אלפים", "ששת אלפים", "שבעת אלפים",
              "שמונת אלפים", "תשעת אלפים", "עשרת אלפים")
_ORDINAL_F = ("", "ראשונה", "שנייה", "שלישית", "רביעית", "חמישית", "שישית", "שביעית", "שמינית", "תשיעית",
              "עשירית")
_HE_MONTHS = ("בינואר", "בפברואר", "במרץ", "באפריל", "במאי", "ביוני", "ביולי", "באוגוסט", "בספטמבר", "באוקטובר",
              "בנובמבר", "בדצמבר")
_HE_WEEKDAY_LETTERS = {"א": "ראשון", "ב": "שני", "ג": "שלישי", "ד": "רביעי", "ה": "חמישי", "ו": "שישי", "ש": "שבת"}

# The gender of what is counted: masculine nouns (and their plurals), feminine nouns. A number
# with nothing countable after it is said the way Hebrew counts, in the feminine.
_MASC = frozenset({
    "חדר", "חדרים", "חדרי", "שקל", "שקלים", "₪", 'ש"ח', "ש״ח", "חודש", "חודשים", "יום", "ימים", "שבוע", "שבועות",
    "מטר", "מטרים", 'מ"ר', "מ״ר", "אחוז", "אחוזים", "%", "ילד", "ילדים", "בית", "בתים", "נכס", "נכסים", "מיליון",
    "מיליונים", "דולר", "דולרים", "$", "אנשים", "מקומות", "חלונות", "קילומטר", 'ק"מ', "רגעים", "פרויקטים",
    "מגרשים", "משרדים", "דונם", "דונמים", "שקלים.", "חדרים.",
})
_FEM = frozenset({
    "דירה", "דירות", "שנה", "שנים", "דקה", "דקות", "שעה", "שעות", "קומה", "קומות", "אפשרות", "אפשרויות",
    "פגישה", "פגישות", "מרפסת", "מרפסות", "חניה", "חניות", "חנייה", "חניות", "שאלה", "שאלות", "ספרה", "ספרות",
    "יחידה", "יחידות", "וילה", "וילות", "משפחה", "משפחות", "פעם", "פעמים", "נפשות", "אופציות", "שניות", "שנייה",
})
_FLOOR_WORDS = frozenset({"קומה", "בקומה", "לקומה", "מקומה", "הקומה", "בקומה", "קומת"})
_HE_ABBREVIATIONS = {
    'ת"א': "תל אביב", 'ר"ג': "רמת גן", 'פ"ת': "פתח תקווה", 'ב"ש': "באר שבע", 'ראשל"צ': "ראשון לציון",
    'מ"ר': "מטר", 'ש"ח': "שקל", 'ממ"ד': "ממד", 'אח"כ': "אחר כך", 'ע"י': "על ידי", "וכו'": "וכולי",
    'נדל"ן': "נדלן", 'ק"מ': "קילומטר", 'בע"מ': "בעם", 'ת"ז': "תעודת זהות", 'י-ם': "ירושלים", 'ירו-ם': "ירושלים",
    'רה"ע': "ראש העין", 'הוד"ש': "הוד השרון", 'רמה"ש': "רמת השרון", 'כ"ס': "כפר סבא",
}
# Latin words said in Hebrew letters (lower case keys); others are transliterated.
_LATIN_HE = {
    "agentlocator": "אייג'נט לוקייטור", "agent": "אייג'נט", "locator": "לוקייטור", "whatsapp": "וואטסאפ",
    "ok": "אוקיי", "okay": "אוקיי", "sms": "אס אם אס", "email": "אימייל", "e-mail": "אימייל", "mail": "מייל",
    "google": "גוגל", "zoom": "זום", "waze": "וייז", "wifi": "וויי פיי", "wi-fi": "וויי פיי", "ai": "איי איי",
    "crm": "סי אר אם", "pdf": "פי די אף", "gmail": "ג'ימייל", "facebook": "פייסבוק", "instagram": "אינסטגרם",
    "yad2": "יד שתיים", "madlan": "מדלן", "noa": "נועה", "link": "לינק", "app": "אפליקציה", "online": "אונליין",
    "penthouse": "פנטהאוז", "duplex": "דופלקס", "studio": "סטודיו", "vip": "וי איי פי", "tlv": "תל אביב",
}
_LETTER_NAMES_HE = {
    "a": "איי", "b": "בי", "c": "סי", "d": "די", "e": "אי", "f": "אף", "g": "ג'י", "h": "אייץ'", "i": "איי",
    "j": "ג'יי", "k": "קיי", "l": "אל", "m": "אם", "n": "אן", "o": "או", "p": "פי", "q": "קיו", "r": "אר", "s": "אס",
    "t": "טי", "u": "יו", "v": "וי", "w": "דאבל יו", "x": "אקס", "y": "וואי", "z": "זי",
}
_HE_PREFIX = re.compile(r"^([ובלמהשכ]{1,3})-?(?=[\d+A-Za-z₪$])|^([ובלמהשכ]{1,3})-(?=\S)")


def _group_below_1000(n: int, fem: bool) -> list[str]:
    parts: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        parts.append(_HUNDREDS[hundreds])
    if 10 <= rest < 20:
        parts.append((_TEENS_F if fem else _TEENS_M)[rest - 10])
    else:
        tens, unit = divmod(rest, 10)
        if tens:
            parts.append(_TENS[tens])
        if unit:
            parts.append((_F if fem else _M)[unit])
    return parts


def _join_parts(parts: list[str]) -> str:
    if len(parts) > 1:
        parts = parts[:-1] + ["ו" + parts[-1]]
    return " ".join(parts)


def he_number(n: int, fem: bool = True, construct: bool = False) -> str:
    """A whole number in Hebrew words, feminine (counting) or masculine. ``construct``: right
    before its noun ("שני חדרים", "שתי דירות")."""
    if n < 0:
        return "מינוס " + he_number(-n, fem)
    if n == 0:
        return "אפס"
    if construct and n == 2:
        return "שתי" if fem else "שני"
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    groups: list[str] = []
    if millions:
        if millions == 1:
            groups.append("מיליון")
        elif millions == 2:
            groups.append("שני מיליון")
        else:
            groups.append(_join_parts(_group_below_1000(millions, False)) + " מיליון")
    if thousands:
        if thousands <= 10:
            groups.append(_THOUSANDS[thousands])
        else:
            groups.append(_join_parts(_group_below_1000(thousands, False)) + " אלף")
    if units:
        parts = _group_below_1000(units, fem)
        said = _join_parts(parts)
        if groups and len(parts) == 1:
            said = "ו" + said  # "אלף וחמש מאות", "שבעת אלפים ועשרים"
        groups.append(said)
    return " ".join(groups)


def he_amount(value: float, fem: bool = False) -> str:
    """An amount that may be a decimal of millions or thousands already multiplied out;
    half millions said the way people do ("מיליון וחצי", "שניים וחצי מיליון")."""
    n = round(value)
    if n >= 1_000_000 and n % 1_000_000 == 500_000 and n < 11_000_000:
        whole = n // 1_000_000
        return "מיליון וחצי" if whole == 1 else f"{he_number(whole, False)} וחצי מיליון"
    return he_number(n, fem)


def _he_decimal(value: float, fem: bool) -> str:
    whole = int(value)
    frac = round(value - whole, 6)
    if frac == 0.5:
        return ("חצי" if whole == 0 else f"{he_number(whole, fem)} וחצי")
    if frac == 0.25:
        return f"{he_number(whole, fem)} ורבע"
    digits = f"{value:.6f}".rstrip("0").split(".")[1]
    return f"{he_number(whole, fem)} נקודה " + " ".join(_F[int(d)] for d in digits)


def _next_noun(following: list[str]) -> tuple[str | None, int]:
    """The counted noun after a number and how many words ahead it is ("וחצי" may come between)."""
    for k, word in enumerate(following[:2]):
        core = _split_punct(word)[1]
        if k == 0 and core in ("וחצי", "ורבע", "ו-חצי"):
            continue
        return core, k
    return None, 0


def _gender_fem(noun: str | None) -> bool:
    if noun is None:
        return True
    if noun in _MASC:
        return False
    if noun in _FEM:
        return True
    if len(noun) > 2 and noun[0] in "בלהו" and noun[1:] in _MASC:
        return False
    return True


def _he_time(hour: int, minute: int) -> str | None:
    if not (0 <= hour <= 24 and 0 <= minute < 60):
        return None
    hour %= 24
    if hour == 0 and minute == 0:
        return "חצות"
    said_hour = hour
    if minute == 45:
        said_hour = (hour + 1) % 24
    h12 = said_hour % 12 or 12
    word = _F[h12] if h12 < 10 else _TEENS_F[h12 - 10]
    if minute == 0:
        said = word
    elif minute == 15:
        said = f"{word} ורבע"
    elif minute == 30:
        said = f"{word} וחצי"
    elif minute == 45:
        said = f"רבע ל{word}"
    else:
        said = f"{word} ו{he_number(minute, True)}"
    period = hour if minute != 45 else said_hour
    if 5 <= period < 12:
        part = "בבוקר"
    elif 12 <= period < 15:
        part = "בצהריים"
    elif 15 <= period < 18:
        part = "אחר הצהריים"
    elif 18 <= period < 22:
        part = "בערב"
    else:
        part = "בלילה"
    return f"{said} {part}"


_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_TIME_RANGE = re.compile(r"^(\d{1,2}):(\d{2})[-–](\d{1,2}):(\d{2})$")
_DATE = re.compile(r"^(\d{1,2})([./])(\d{1,2})(?:\2(\d{2}|\d{4}))?$")
_RANGE = re.compile(r"^(\d+(?:\.\d+)?)[-–](\d+(?:\.\d+)?)$")
_MONEY = re.compile(r"^(?P<pre>[₪$])?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?P<post>[₪$%])?$")
_NOT_DATE_AFTER = frozenset({"מיליון", "אלף", "חדרים", "חדר", "מיליונים", "million", "thousand", "rooms", "%"})


def _date_parts(core: str, following: list[str]) -> tuple[int, int, int | None] | None:
    m = _DATE.match(core)
    if not m:
        return None
    day, sep, month, year = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    if not (1 <= day <= 31 and 1 <= int(month) <= 12):
        return None
    nxt = _split_punct(following[0])[1] if following else ""
    if sep == "." and year is None and (len(month) != 2 or nxt in _NOT_DATE_AFTER):
        return None  # "2.5 מיליון" is a decimal
    full_year = None
    if year:
        full_year = int(year) + (2000 if len(year) == 2 else 0)
    return day, int(month), full_year


def _he_word(word: str, following: list[str], prev: str | None) -> tuple[str, int, bool]:
    head, core, tail = _split_punct(word)
    if not core:
        return word, 0, False
    said, consumed, back = _he_core(core, following, prev)
    if consumed and following:
        # the swallowed word's own punctuation ends the chunk ("1.5 מיליון." -> "מיליון וחצי.")
        tail = _split_punct(following[consumed - 1])[2] or tail
    return f"{head}{said}{tail}", consumed, back


def _he_core(core: str, following: list[str], prev: str | None) -> tuple[str, int, bool]:
    core = core.replace("״", '"').replace("׳", "'")
    prev_core = _split_punct(prev)[1] if prev else ""
    # a glued prefix: "ב-10:00", "מ-AgentLocator", "ב4", 'בת"א'
    m = _HE_PREFIX.match(core)
    if m and core not in _HE_ABBREVIATIONS:
        prefix = m.group(1) or m.group(2)
        rest = core[m.end() :]
        said, consumed, back = _he_core(rest, following, None)
        if said != rest or re.match(r"[\d+A-Za-z₪$]", rest):
            return prefix + said, consumed, back
    for size in (0, 1, 2):
        head, rest = core[:size], core[size:]
        if set(head) <= set("ובלמהש") and rest in _HE_ABBREVIATIONS:
            return head + _HE_ABBREVIATIONS[rest], 0, False
    # a weekday letter: "יום ה'"
    if re.fullmatch(r"[אבגדהוש]'", core) and prev_core in ("יום", "ביום", "מיום", "ליום"):
        return _HE_WEEKDAY_LETTERS[core[0]], 0, True
    digits = _phone_digits(core)
    if digits is not None:
        return ", ".join(" ".join(_F[int(d)] for d in group) for group in digits), 0, False
    m = _TIME_RANGE.match(core)
    if m:
        a = _he_time(int(m.group(1)), int(m.group(2)))
        b = _he_time(int(m.group(3)), int(m.group(4)))
        if a and b:
            return f"מ{a} עד {b}", 0, False
    m = _TIME.match(core)
    if m:
        said = _he_time(int(m.group(1)), int(m.group(2)))
        if said:
            return said, 0, False
    date = _date_parts(core, following)
    if date:
        day, month, year = date
        said = f"{he_number(day, False)} {_HE_MONTHS[month - 1]}"
        if year:
            said += " " + he_number(year, True)
        return said, 0, False
    m = _RANGE.match(core)
    if m and "." not in m.group(1) + m.group(2):
        noun, _k = _next_noun(following)
        fem = _gender_fem(noun)
        return f"{he_number(int(m.group(1)), fem)} עד {he_number(int(m.group(2)), fem)}", 0, False
    m = _MONEY.match(core)
    if m and (m.group("pre") or m.group("post") or _NUMBER.match(core)):
        return _he_number_word(m, following, prev_core)
    if core in ("₪", "$", "%"):
        return {"₪": "שקל", "$": "דולר", "%": "אחוז"}[core], 0, False
    m = re.fullmatch(r"(\d+)-([\u05d0-\u05ea]+)", core)
    if m:  # "4-חדרים"
        noun = m.group(2)
        return f"{he_number(int(m.group(1)), _gender_fem(noun), construct=_is_noun(noun))} {noun}", 0, False
    if re.fullmatch(r"[A-Za-z][A-Za-z'’\-]*\d*", core):
        return _latin_in_hebrew(core), 0, False
    return core, 0, False


def _he_number_word(m: re.Match[str], following: list[str], prev_core: str) -> tuple[str, int, bool]:
    value = float(m.group("num").replace(",", ""))
    pre, post = m.group("pre"), m.group("post")
    if post == "%":
        return f"{_he_decimal(value, False) if value != int(value) else he_number(int(value), False)} אחוז", 0, False
    currency = {"₪": "שקל", "$": "דולר"}.get(pre or post or "")
    if currency:
        return f"{he_amount(value) if value == int(value) else _he_decimal(value, False)} {currency}", 0, False
    noun, ahead = _next_noun(following)
    # a floor: "קומה 3" -> "קומה שלישית"
    if prev_core in _FLOOR_WORDS and value == int(value) and 0 < value <= 10:
        return _ORDINAL_F[int(value)], 0, True
    if noun in ("מיליון", "מיליונים") and ahead == 0:
        if value != int(value) or value == 1:
            return he_amount(value * 1_000_000), 1, False  # "1.8 מיליון" -> "מיליון שמונה מאות אלף"
        return he_number(int(value), False, construct=True), 0, False  # "2 מיליון" -> "שני מיליון"
    if noun in ("אלף", "אלפים") and ahead == 0:
        if value != int(value) or 2 <= value <= 10:
            return he_number(round(value * 1000), False), 1, False  # "8 אלף" -> "שמונת אלפים"
        return he_number(int(value), False), 0, False  # "800 אלף"
    fem = _gender_fem(noun)
    if value != int(value):
        if round(value % 1, 6) == 0.5 and int(value) == 1 and noun in ("חדרים", "חדר") and ahead == 0:
            return "חדר וחצי", 1, False
        return _he_decimal(value, fem), 0, False
    n = int(value)
    if n == 1 and noun is not None and ahead == 0 and noun in _ONE_AFTER:
        return f"{_ONE_AFTER[noun]} {'אחת' if fem else 'אחד'}", 1, False  # "1 חדר" -> "חדר אחד"
    if n >= 1_000_000:
        return he_amount(n), 0, False  # "2,500,000 ₪" -> "שניים וחצי מיליון שקל"
    return he_number(n, fem, construct=noun is not None and ahead == 0 and _is_noun(noun)), 0, False


# "1 חדר" is said "חדר אחד": the noun first.
_ONE_AFTER = {w: w for w in ("חדר", "דירה", "שקל", "חודש", "שנה", "שבוע", "יום", "מיליון")} | {"₪": "שקל", 'ש"ח': "שקל"}


def _is_noun(word: str) -> bool:
    return word in _MASC or word in _FEM or (len(word) > 2 and word[0] in "בלהו" and word[1:] in _MASC | _FEM)


def _latin_in_hebrew(word: str) -> str:
    low = word.lower().replace("’", "'")
    if low in _LATIN_HE:
        return _LATIN_HE[low]
    if re.fullmatch(r"[A-Z]{2,5}", word):
        return " ".join(_LETTER_NAMES_HE[c] for c in low)
    # a brand written in CamelCase is its words: "AgentLocator" -> "Agent", "Locator"
    parts = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", word)
    if len(parts) > 1:
        return " ".join(_latin_in_hebrew(p) if not p.isdigit() else he_number(int(p)) for p in parts)
    return transliterate(low)


_DIGRAPHS = (
    ("tch", "צ'"), ("sch", "ש"), ("sh", "ש"), ("ch", "צ'"), ("th", "ת'"), ("ph", "פ"), ("kh", "ח"), ("ck", "ק"),
    ("qu", "קו"), ("tz", "צ"), ("ts", "צ"), ("oo", "ו"), ("ee", "י"), ("ea", "י"), ("ou", "או"), ("ai", "יי"),
    ("ay", "יי"), ("ey", "יי"), ("oa", "ו"), ("ie", "י"),
)
_LETTERS = {
    "b": "ב", "d": "ד", "f": "פ", "g": "ג", "h": "ה", "j": "ג'", "k": "ק", "l": "ל", "m": "מ", "n": "נ", "p": "פ",
    "q": "ק", "r": "ר", "s": "ס", "t": "ט", "v": "ו", "w": "ו", "x": "קס", "z": "ז", "i": "י", "o": "ו", "u": "ו",
    "y": "י",
}
_FINAL = {"מ": "ם", "נ": "ן", "פ": "ף", "צ": "ץ", "כ": "ך"}


def transliterate(word: str) -> str:
    """A rough Hebrew spelling of a Latin word, for a Hebrew voice to read ("zoom" -> "זום")."""
    w = word.lower()
    out = ""
    i = 0
    while i < len(w):
        pair = next(((src, dst) for src, dst in _DIGRAPHS if w.startswith(src, i)), None)
        if pair:
            src, dst = pair
            out += ("א" + dst if not out and dst[0] in "וי" and src[0] in "aeiou" else dst)
            i += len(src)
            continue
        ch = w[i]
        if ch in "ae":
            if not out:
                out += "א"
            elif ch == "e" and i == len(w) - 1:
                pass  # a silent final e
            elif ch == "a":
                out += "" if i < len(w) - 1 else "ה"
        elif ch == "c":
            out += "ס" if i + 1 < len(w) and w[i + 1] in "eiy" else "ק"
        elif ch in _LETTERS:
            letter = _LETTERS[ch]
            if not out and ch in "iou":
                letter = "א" + letter
            out += letter
        i += 1
    if out and out[-1] in _FINAL:
        out = out[:-1] + _FINAL[out[-1]]
    return out or word


# -- English -----------------------------------------------------------------------------------

_EN_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
            "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
               "twelve": "twelfth"}
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
_EN_WORDS = {"agentlocator": "Agent Locator", "sqm": "square meters", "m²": "square meters", "nis": "shekels",
             "ils": "shekels", "tlv": "Tel Aviv", "am": "AM", "pm": "PM", "a.m.": "AM", "p.m.": "PM"}


def en_number(n: int) -> str:
    if n < 0:
        return "minus " + en_number(-n)
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[unit]}" if unit else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_EN_ONES[hundreds]} hundred" + (f" {en_number(rest)}" if rest else "")
    for size, name in ((1_000_000_000, "billion"), (1_000_000, "million"), (1000, "thousand")):
        if n >= size:
            big, rest = divmod(n, size)
            return f"{en_number(big)} {name}" + (f" {en_number(rest)}" if rest else "")
    return str(n)


def en_ordinal(n: int) -> str:
    words = en_number(n)
    head, _, last = words.rpartition("-") if "-" in words else words.rpartition(" ")
    sep = "-" if "-" in words else " "
    if last in _EN_ORDINAL:
        last = _EN_ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}{sep}{last}" if head else last


def _en_decimal(value: float) -> str:
    whole = int(value)
    frac = round(value - whole, 6)
    if frac == 0.5:
        return "a half" if whole == 0 else f"{en_number(whole)} and a half"
    digits = f"{value:.6f}".rstrip("0").split(".")[1]
    return f"{en_number(whole)} point " + " ".join(_EN_ONES[int(d)] for d in digits)


def _en_time(hour: int, minute: int) -> str | None:
    if not (0 <= hour <= 24 and 0 <= minute < 60):
        return None
    hour %= 24
    if hour == 0 and minute == 0:
        return "midnight"
    if hour == 12 and minute == 0:
        return "noon"
    h12 = hour % 12 or 12
    said = en_number(h12)
    if minute:
        said += " " + (f"oh {en_number(minute)}" if minute < 10 else en_number(minute))
    return f"{said} {'AM' if hour < 12 else 'PM'}"


def _en_word(word: str, following: list[str], prev: str | None) -> tuple[str, int, bool]:
    head, core, tail = _split_punct(word)
    if not core:
        return word, 0, False
    said, consumed, back = _en_core(core, following)
    if consumed and following:
        tail = _split_punct(following[consumed - 1])[2] or tail
    return f"{head}{said}{tail}", consumed, back


def _en_core(core: str, following: list[str]) -> tuple[str, int, bool]:
    low = core.lower()
    if low in _EN_WORDS:
        return _EN_WORDS[low], 0, False
    digits = _phone_digits(core)
    if digits is not None:
        return ", ".join(" ".join("oh" if d == "0" else _EN_ONES[int(d)] for d in g) for g in digits), 0, False
    m = _TIME_RANGE.match(core)
    if m:
        a, b = _en_time(int(m.group(1)), int(m.group(2))), _en_time(int(m.group(3)), int(m.group(4)))
        if a and b:
            return f"from {a} to {b}", 0, False
    m = _TIME.match(core)
    if m:
        said = _en_time(int(m.group(1)), int(m.group(2)))
        if said:
            nxt = _split_punct(following[0])[1].lower() if following else ""
            if nxt in ("am", "pm", "a.m.", "p.m."):
                said = said.rsplit(" ", 1)[0]  # "10:00 am": the next word says it
            return said, 0, False
    m = re.fullmatch(r"(\d+)(st|nd|rd|th)", low)
    if m:
        return en_ordinal(int(m.group(1))), 0, False
    date = _date_parts(core, following)
    if date:
        day, month, year = date
        said = f"{_EN_MONTHS[month - 1]} {en_ordinal(day)}"
        if year:
            said += ", " + (f"{en_number(year // 100)} {en_number(year % 100)}" if year % 100 >= 10 else en_number(year))
        return said, 0, False
    m = _RANGE.match(core)
    if m and "." not in m.group(1) + m.group(2):
        return f"{en_number(int(m.group(1)))} to {en_number(int(m.group(2)))}", 0, False
    m = _MONEY.match(core)
    if m and (m.group("pre") or m.group("post") or _NUMBER.match(core)):
        value = float(m.group("num").replace(",", ""))
        said = en_number(int(value)) if value == int(value) else _en_decimal(value)
        nxt = _split_punct(following[0])[1].lower() if following else ""
        if value != int(value) and nxt in ("million", "thousand", "billion"):
            said = f"{en_number(int(value))} point " + " ".join(
                _EN_ONES[int(d)] for d in f"{value:.6f}".rstrip("0").split(".")[1])
            if round(value % 1, 6) == 0.5:
                said = f"{en_number(int(value))} and a half"
        unit = {"₪": "shekels", "$": "dollars", "%": "percent"}.get(m.group("pre") or m.group("post") or "")
        if unit:
            said += " " + unit
        return said, 0, False
    if core in ("₪", "$", "%"):
        return {"₪": "shekels", "$": "dollars", "%": "percent"}[core], 0, False
    m = re.fullmatch(r"(\d+)-([A-Za-z]+)", core)
    if m:  # "a 4-room apartment"
        return f"{en_number(int(m.group(1)))}-{m.group(2)}", 0, False
    m = re.fullmatch(r"([A-Z][a-z]+)([A-Z][a-z]+)+", core)
    if m and low != "whatsapp":
        return " ".join(re.findall(r"[A-Z][a-z]+", core)), 0, False
    return core, 0, False
