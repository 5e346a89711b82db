"""Slot extraction from a caller's words, Hebrew and English (pure functions).

Used by the offline brain only: the OpenAI brain gets its slots from function calls.
Every extractor returns None when it is not sure; the dialog asks rather than guesses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dialog.places import PLACES, Place

# -- normalisation ---------------------------------------------------------------------------

_PUNCT = re.compile(r"[,;:!?()\[\]…״“”\"]")


def normalize(text: str) -> str:
    t = text.lower().replace("״", '"').replace("׳", "'").replace("–", " ").replace("—", " ")
    t = t.replace("מליון", "מיליון").replace("₪", " שקל ")
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)  # 1,800,000 -> 1800000
    t = re.sub(r"(?<!\d)-|-(?!\d)", " ", t)  # tel-aviv, מ-AgentLocator, but keep 050-123
    t = re.sub(r"(\d+(?:\.\d+)?)\s*k\b", r"\1 thousand", t)
    t = re.sub(r"(\d+(?:\.\d+)?)\s*m\b", r"\1 million", t)
    return t


_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z']+|[\u05d0-\u05ea'\"]+")


def tokens(text: str) -> list[str]:
    """Normalised tokens; a Hebrew leading ו ("and") is split off when the rest is a known word."""
    out: list[str] = []
    for tok in _TOKEN.findall(normalize(text)):
        tok = tok.strip("'\"") if not tok.endswith("'") or len(tok) < 3 else tok
        if not tok:
            continue
        if len(tok) > 1 and tok[0] == "ו" and tok not in _NUM_WORDS and tok[1:] in _SPLITTABLE:
            out.extend(("ו", tok[1:]))
        else:
            out.append(tok)
    return out


# -- numbers ---------------------------------------------------------------------------------

_NUM_WORDS: dict[str, float] = {
    # Hebrew, both genders and construct forms
    "אפס": 0, "אחד": 1, "אחת": 1, "שניים": 2, "שתיים": 2, "שני": 2, "שתי": 2, "שלושה": 3, "שלוש": 3,
    "שלשה": 3, "ארבעה": 4, "ארבע": 4, "חמישה": 5, "חמש": 5, "שישה": 6, "שש": 6, "שבעה": 7, "שבע": 7,
    "שמונה": 8, "תשעה": 9, "תשע": 9, "עשרה": 10, "עשר": 10, "עשרים": 20, "שלושים": 30, "ארבעים": 40,
    "חמישים": 50, "שישים": 60, "שבעים": 70, "שמונים": 80, "תשעים": 90, "מאה": 100, "מאתיים": 200,
    "אלפיים": 2000,
    # English
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_HALF = {"חצי", "half"}
_QUARTER = {"רבע", "quarter"}
_HUNDRED = {"מאות", "hundred"}
_FILLER = {"ו", "and", "a", "an"}
_MILLION = {"מיליון", "million", "millions", "מיליונים"}
_THOUSAND = {"אלף", "thousand", "אלפים", "grand"}
_NUMERIC = set(_NUM_WORDS) | _HALF | _QUARTER | _HUNDRED | _FILLER


def _is_digits(tok: str) -> bool:
    return tok[:1].isdigit()


def words_value(toks: list[str]) -> float | None:
    """Value of one spoken number: "שניים וחצי" -> 2.5, "eight hundred" -> 800, "עשרים ושלוש" -> 23.

    None when the run is not one number ("חצי שלושה", "2 3"): parts must come in falling
    order and a half or quarter ends the number.
    """
    total = 0.0
    last: float | None = None  # the previous part's size: the next one must be smaller
    ended = False
    seen = False
    for tok in toks:
        if tok in _FILLER:
            continue
        if ended:
            return None
        if tok in _HALF or tok in _QUARTER:
            if seen and last is not None and last < 1:
                return None
            total += 0.5 if tok in _HALF else 0.25
            ended = True
        elif tok in _HUNDRED:
            if last is not None and last >= 10:
                return None
            total = (total or 1) * 100
            last = 100
        else:
            value = float(tok) if _is_digits(tok) else _NUM_WORDS.get(tok)
            if value is None or (last is not None and (value >= last or last < 10)):
                return None
            total += value
            last = value if not _is_digits(tok) else 0.5  # after digits only a half fits
        seen = True
    return total if seen else None


def _number_before(toks: list[str], i: int) -> list[str]:
    """The longest run of number tokens ending just before ``i`` that is one number."""
    j = i
    while j > 0 and (toks[j - 1] in _NUMERIC or _is_digits(toks[j - 1])):
        j -= 1
    for start in range(j, i):
        run = toks[start:i]
        while run and run[0] in _FILLER - {"a"}:
            run = run[1:]
        if run and words_value(run) is not None:
            return run
    return []


def _number_after(toks: list[str], i: int) -> list[str]:
    """The longest run of number tokens starting at ``i`` that is one number."""
    j = i
    while j < len(toks) and (toks[j] in _NUMERIC or _is_digits(toks[j])):
        j += 1
    for end in range(j, i, -1):
        if words_value(toks[i:end]) is not None:
            return toks[i:end]
    return []


_run_before = _number_before
_run_after = _number_after

_POINT = {"point", "נקודה"}


def _join_decimals(toks: list[str]) -> list[str]:
    """ "one point eight" -> "1.8", "שתיים נקודה חמש" -> "2.5": a spoken decimal as one token."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        whole = out[-1] if out else None
        if tok in _POINT and whole is not None and i + 1 < len(toks):
            base = float(whole) if _is_digits(whole) else _NUM_WORDS.get(whole)
            digits = ""
            j = i + 1
            while j < len(toks) and _NUM_WORDS.get(toks[j], 10) < 10 and toks[j] not in ("שני", "שתי"):
                digits += str(int(_NUM_WORDS[toks[j]]))
                j += 1
            if base is not None and base == int(base) and digits:
                out[-1] = f"{int(base)}.{digits}"
                i = j
                continue
        out.append(tok)
        i += 1
    return out

# An Israeli number (0 + 1–2 digit prefix + 7 digits): never read as an amount.
_PHONE_LIKE = re.compile(r"(?:\+?972[\s-]?|(?<!\d)0)\d{1,2}(?:[\s-]?\d){7}(?!\d)")


# -- budget ----------------------------------------------------------------------------------


def budget_in(text: str, *, expecting: bool = False) -> int | None:
    """A budget in shekels: "מיליון וחצי", "2.5 מיליון", "800 אלף", "two million shekels".

    With ``expecting`` (the agent just asked for the budget) a bare "שתיים וחצי" is read as
    millions and a bare "800" as thousands, the way Israelis answer that question.
    """
    toks = _join_decimals(tokens(_PHONE_LIKE.sub(" ", text)))  # "052-7654321" is not 7.6 million shekels
    found: list[int] = []
    consumed: set[int] = set()
    for i, tok in enumerate(toks):
        if tok in _MILLION:
            left = _run_before(toks, i)
            value = words_value(left) if left else 1.0
            if value is None and all(t in _FILLER for t in left):
                value = 1.0  # "a million"
            if value is None:
                continue
            amount = value * 1_000_000
            after = _run_after(toks, i + 1)
            if after and after[0] in ("ו", "and"):
                extra = words_value(after)
                end = i + 1 + len(after)
                if extra is not None:
                    if extra < 1:  # "מיליון וחצי", "a million and a half"
                        amount += extra * 1_000_000
                    else:  # "מיליון ושמונה מאות (אלף)"
                        amount += extra * 1000 if extra < 1000 else extra
                    if end < len(toks) and toks[end] in _THOUSAND:
                        consumed.add(end)
            found.append(round(amount))
        elif tok in _THOUSAND and i not in consumed:
            left = _run_before(toks, i)
            value = words_value(left) if left else None
            if value:
                found.append(round(value * 1000))
        elif _is_digits(tok) and float(tok) >= 100_000:
            found.append(int(float(tok)))
    if found:
        return found[-1]  # the caller's last word on it ("a million... no, a million and a half")
    if expecting:
        run = [t for t in toks if t in _NUMERIC or _is_digits(t)]
        value = words_value(run) if run else None
        if value and 0.5 <= value <= 20:
            return round(value * 1_000_000)
        if value and 200 <= value <= 20_000:
            return round(value * 1000)
    return None


_BUDGET_REFUSAL = re.compile(
    r"(לא\s+רוצה\s+(?:להגיד|לומר|לדבר|לגלות)|מעדי(?:ף|פה)\s+(?:לא|שלא)|לא\s+(?:יודע|יודעת)\s+עדיין|עוד\s+לא\s+(?:יודע|יודעת|החלטנו|החלטתי)"
    r"|אין\s+לי\s+(?:מושג|תקציב)|זה\s+לא\s+משנה|לא\s+משנה\s+התקציב|נדבר\s+על\s+זה\s+(?:אח\"כ|אחר\s+כך|בפגישה)"
    r"|rather\s+not|prefer\s+not|don't\s+want\s+to\s+(?:say|tell|share)|not\s+(?:sure|telling)|no\s+idea"
    r"|none\s+of\s+your|let's\s+not\s+talk|skip\s+(?:that|it)|not\s+going\s+to\s+say)",
    re.IGNORECASE,
)


def refuses(text: str) -> bool:
    return bool(_BUDGET_REFUSAL.search(normalize(text)))


# -- rooms -----------------------------------------------------------------------------------

_ASR_THREE = {"free", "tree"}
_ROOM_WORDS = {"חדרים": 0, "חדר": 0, "חד'": 0, "rooms": 0, "room": 0, "bedrooms": 1, "bedroom": 1}


def rooms_in(text: str) -> float | None:
    """Room count, Israeli style (living room included): "4 חדרים", "ארבעה וחצי חדרים", "3 bedrooms"=4."""
    toks = tokens(text)
    for i, tok in enumerate(toks):
        if tok not in _ROOM_WORDS:
            continue
        left = _run_before(toks, i)
        value = words_value(left) if left else None
        if value is None and i > 0 and toks[i - 1] in _ASR_THREE:
            value = 3.0  # Whisper hears a synthetic "three rooms" as "free room"
        if value is None and i + 1 < len(toks) and toks[i + 1] in ("אחד", "one"):
            value = 1.0  # "חדר אחד"
        if value is None and tok in ("חדר", "room") and left == [] and i > 0 and toks[i - 1] in ("דירת",):
            value = 1.0  # "דירת חדר"
        if value is not None and 1 <= value <= 12:
            return value + _ROOM_WORDS[tok]  # bedrooms + the living room
    return None


# -- property type ---------------------------------------------------------------------------

# (pattern, Hebrew label, English label): most specific first.
_PROPERTY: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(p, re.IGNORECASE), he, en)
    for p, he, en in [
        (r"דירת\s+גן|garden\s+(?:apartment|flat)", "דירת גן", "garden apartment"),
        (r"פנטהאוז|פנטהאוס|penthouse", "פנטהאוז", "penthouse"),
        (r"דופלקס|duplex", "דופלקס", "duplex"),
        (r"דו\s*משפחתי|semi\s*detached", "דו-משפחתי", "semi-detached house"),
        (r"קוטג'?|cottage", "קוטג'", "cottage"),
        (r"וילה|villa", "וילה", "villa"),
        (r"(?:^|\s)(?:ה|ב)?בית\s+פרטי|(?:^|\s)בית(?=\s|$)(?!\s+(?:שמש|הכרם|ספר))|\bprivate\s+house\b|\bhouse\b|\bhome\b(?!\s+office)",
         "בית פרטי", "house"),
        (r"סטודיו|studio", "דירת סטודיו", "studio"),
        (r"משרד|\boffice\b", "משרד", "office"),
        (r"מגרש|\bplot\b|\bland\b", "מגרש", "plot"),
        (r"דיר(?:ה|ת|ות)|\bapartment|\bflat\b|\bcondo", "דירה", "apartment"),
    ]
]


def property_in(text: str, hebrew: bool) -> str | None:
    t = normalize(text)
    best: tuple[int, str] | None = None
    for pattern, he, en in _PROPERTY:
        m = pattern.search(t)
        if m and (best is None or m.start() < best[0] - 20):
            # earlier rows are more specific; a later row wins only when said much earlier
            best = (m.start(), he if hebrew else en)
    return best[1] if best else None


# -- area ------------------------------------------------------------------------------------

_HE_PREFIX = "(?:[ובלמהשכ]{0,2})"
_BOUNDARY_L = r"(?:^|(?<=[\s,.;!?\"'(]))"
_BOUNDARY_R = r"(?=$|[\s,.;!?\"')])"


def _place_patterns() -> list[tuple[re.Pattern[str], Place]]:
    rows: list[tuple[re.Pattern[str], Place]] = []
    for place in PLACES:
        for name in (place.he, place.en, *place.aliases):
            n = normalize(name)
            hebrew = bool(re.search(r"[\u05d0-\u05ea]", n))
            body = re.escape(n).replace(r"\ ", r"\s+")
            prefix = _HE_PREFIX if hebrew else r"(?:the\s+)?"
            rows.append((re.compile(_BOUNDARY_L + prefix + body + _BOUNDARY_R), place))
    # longer names first, so "הרצליה פיתוח" beats "הרצליה" at the same spot
    rows.sort(key=lambda r: -len(r[0].pattern))
    return rows


_PLACE_PATTERNS = _place_patterns()


def area_in(text: str, hebrew: bool) -> str | None:
    """The last place named ("not Holon, Bat Yam" -> Bat Yam); neighbourhoods carry their city."""
    t = normalize(text)
    hits: list[tuple[int, int, Place]] = []
    for pattern, place in _PLACE_PATTERNS:
        for m in pattern.finditer(t):
            if any(s <= m.start() < e for s, e, _ in hits):
                continue  # inside a longer name already found
            hits.append((m.start(), m.end(), place))
    if not hits:
        return None
    hits.sort(key=lambda h: h[0])
    return hits[-1][2].label(hebrew)


# -- timeframe -------------------------------------------------------------------------------

_NOW = re.compile(
    r"(מיד|מיידי|דחוף|כמה\s+שיותר\s+מהר|בהקדם|כבר\s+עכשיו|asap|as\s+soon\s+as\s+possible|right\s+away|immediately|urgent)",
    re.IGNORECASE,
)
_FLEX = re.compile(
    r"(אין\s+לחץ|לא\s+דחוף|לא\s+לוחץ|אין\s+לנו\s+לחץ|בלי\s+לחץ|no\s+rush|no\s+hurry|not\s+in\s+a\s+hurry|just\s+looking|flexible|גמיש)",
    re.IGNORECASE,
)
_UNITS = {
    "חודש": 1, "חודשים": 1, "month": 1, "months": 1, "שבוע": 0.25, "שבועות": 0.25, "week": 0.25,
    "weeks": 0.25, "שנה": 12, "שנים": 12, "year": 12, "years": 12,
}
_FIXED_UNITS = {"חודשיים": 2, "שבועיים": 0.5, "שנתיים": 24}
_FEW = {"כמה", "few", "couple", "several"}


def timeframe_in(text: str, hebrew: bool) -> str | None:
    t = normalize(text)
    if _NOW.search(t):
        return "מיידי" if hebrew else "as soon as possible"
    toks = tokens(text)
    for i, tok in enumerate(toks):
        months: float | None = None
        few = False
        if tok not in _UNITS and tok not in _FIXED_UNITS and tok[:1] in ("ב", "ל", "ו") and (
            tok[1:] in _UNITS or tok[1:] in _FIXED_UNITS
        ):
            tok = tok[1:]  # "בחודשיים", "לשנה"
        if tok in _FIXED_UNITS:
            months = _FIXED_UNITS[tok]
        elif tok in _UNITS:
            before = toks[max(0, i - 3) : i]
            if any(b in _FEW for b in before):
                few = True
            else:
                run = _run_before(toks, i)
                value = words_value(run) if run else None
                if value is not None and toks[i + 1 : i + 3] == ["ו", "חצי"]:
                    value += 0.5  # "שנה וחצי"
                if value is None:
                    # "תוך חודש", "within a month", "בשנה הקרובה", "next year"
                    value = 1.0 if i > 0 and toks[i - 1] in ("תוך", "בתוך", "בעוד", "עוד", "a", "next", "one") else None
                    if value is None and i + 1 < len(toks) and toks[i + 1] in ("הקרוב", "הקרובה", "הבא", "הבאה"):
                        value = 1.0
                if value is not None:
                    months = value * _UNITS[tok]
        if few:
            return "תוך כמה חודשים" if hebrew else "within a few months"
        if months:
            return _say_months(months, hebrew)
    if _FLEX.search(t):
        return "גמיש" if hebrew else "flexible"
    return None


def _say_months(months: float, hebrew: bool) -> str:
    if months < 1:
        weeks = round(months * 4)
        if hebrew:
            return "תוך שבועיים" if weeks == 2 else ("תוך שבוע" if weeks <= 1 else f"תוך {weeks} שבועות")
        return "within a week" if weeks <= 1 else f"within {weeks} weeks"
    m = round(months, 1)
    if hebrew:
        named = {1: "תוך חודש", 2: "תוך חודשיים", 6: "תוך חצי שנה", 12: "תוך שנה", 24: "תוך שנתיים"}
        return named.get(m, f"תוך {m:g} חודשים")
    named_en = {1: "within a month", 6: "within six months", 12: "within a year", 24: "within two years"}
    return named_en.get(m, f"within {m:g} months")


# -- name --------------------------------------------------------------------------------------

_NAME_STOP = {
    "מחפש", "מחפשת", "מחפשים", "רוצה", "רוצים", "לא", "כן", "צריך", "צריכה", "מעוניין", "מעוניינת", "גר",
    "גרה", "חושב", "חושבת", "בטוח", "בטוחה", "יודע", "יודעת", "פה", "כאן", "רק", "בסדר", "ואני", "ואנחנו",
    "מתקשר", "מתקשרת", "מ", "עם", "בעלי", "אשתי", "נכון", "שמח", "שמחה", "גם", "אני", "זה", "הוא", "היא",
    "looking", "interested", "not", "just", "calling", "fine", "good", "sure", "ok", "okay", "here",
    "trying", "thinking", "a", "the", "in", "and", "i", "we", "from", "with", "my", "is", "so", "very",
    "yes", "no", "still", "also", "right", "correct", "sorry", "wondering", "hoping", "planning", "moving",
}
_NAME_INTRO = re.compile(
    r"(?:קוראים\s+לי|שמי|השם\s+שלי\s+(?:הוא|היא)?|השם\s+שלי|my\s+name\s+is|my\s+name's|name's|call\s+me|this\s+is|i'm|i\s+am|it's|אני|זה|זאת)\s+(.+)",
    re.IGNORECASE,
)


_NAME_STRONG = re.compile(
    r"(?:קוראים\s+לי|שמי|השם\s+שלי\s+(?:הוא|היא)?|השם\s+שלי|my\s+name\s+is|my\s+name's|name's|call\s+me)\s+(.+)",
    re.IGNORECASE,
)


def name_in(text: str, *, expecting: bool = False) -> str | None:
    cleaned = _PUNCT.sub(" ", text).strip()
    # "wait, actually I am, my name is Tom": the explicit introduction wins over an earlier "I am"
    m = _NAME_STRONG.search(cleaned) or _NAME_INTRO.search(cleaned)
    candidate: list[str] = []
    if m:
        intro = m.group(0)[: m.start(1) - m.start(0)].strip().lower()
        weak = intro in ("אני", "זה", "זאת", "i'm", "i am", "it's", "this is")
        if weak and not expecting:
            return None
        candidate = m.group(1).split()
    elif expecting and 1 <= len(cleaned.split()) <= 2:
        candidate = cleaned.split()
    name: list[str] = []
    for word in candidate[:2]:
        w = word.strip(".'\"")
        if not w or w.lower() in _NAME_STOP or any(ch.isdigit() for ch in w):
            break
        if w.lower() in _NUM_WORDS or normalize(w) in _PLACE_WORDS:
            break
        name.append(w if re.search(r"[\u05d0-\u05ea]", w) else w.capitalize())
    return " ".join(name) or None


_PLACE_WORDS = {normalize(w) for p in PLACES for n in (p.he, p.en) for w in n.split()}

# -- phone -------------------------------------------------------------------------------------

_DIGIT_WORDS = {
    "אפס": "0", "אחת": "1", "אחד": "1", "שתיים": "2", "שניים": "2", "שלוש": "3", "ארבע": "4", "חמש": "5",
    "שש": "6", "שבע": "7", "שמונה": "8", "תשע": "9", "zero": "0", "oh": "0", "one": "1", "two": "2",
    "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}


def phone_in(text: str) -> str | None:
    """An Israeli phone number said or typed, as E.164 (+972...)."""
    t = normalize(text)
    digits = ""
    for tok in re.findall(r"\+?\d[\d\s-]*\d|\d|[\u05d0-\u05ea]+|[a-z]+", t):
        if tok[0].isdigit() or tok[0] == "+":
            digits += re.sub(r"\D", "", tok)
        elif tok in _DIGIT_WORDS:
            digits += _DIGIT_WORDS[tok]
    if digits.startswith("972"):
        digits = "0" + digits[3:]
    if re.fullmatch(r"0(?:5\d{8}|[2-9]\d{7})", digits):
        return "+972" + digits[1:]
    return None


# -- short intents -------------------------------------------------------------------------------

_YES = re.compile(
    r"^(?:כן|נכון|בטח|בדיוק|אכן|מאשר|מאשרת|סגור|מתאים|בסדר|יאללה|אוקיי|אוקי|ברור|מעולה|כמובן|yes|yeah|yep|yup|correct|right|sure|ok|okay|perfect|fine|great|absolutely|definitely|sounds\s+good|that's\s+right|that\s+works)\b",
    re.IGNORECASE,
)
_NO = re.compile(r"^(?:לא|ממש\s+לא|no|nope|nah|not\s+really|wrong|that's\s+wrong)\b", re.IGNORECASE)


def yes_no(text: str) -> bool | None:
    t = normalize(text).strip(" .,!")
    if _NO.search(t):
        return False
    if _YES.search(t):
        return True
    return None


_NOT_INTERESTED = re.compile(
    r"(לא\s+מעוני(?:ין|ינת|ינים)|לא\s+רלוונטי|תורידו\s+אותי|אל\s+תתקשרו|not\s+interested|stop\s+calling|remove\s+me|don't\s+call)",
    re.IGNORECASE,
)


def not_interested(text: str) -> bool:
    return bool(_NOT_INTERESTED.search(normalize(text)))


_BUSY = re.compile(
    r"(אין\s+לי\s+זמן|לא\s+נוח\s+לי\s+(?:עכשיו|כרגע)|תתקשר(?:ו|י)\s+(?:אח\"כ|אחר\s+כך|מאוחר\s+יותר|מחר)|אני\s+באמצע\s+משהו"
    r"|call\s+(?:me\s+)?(?:back\s+)?later|bad\s+time|i'm\s+busy|i\s+am\s+busy|no\s+time\s+(?:now|right\s+now))",
    re.IGNORECASE,
)


def busy(text: str) -> bool:
    """The caller cannot talk now: end politely, the lead stays open for a call back."""
    return bool(_BUSY.search(normalize(text)))


_ASKS_LISTINGS = re.compile(
    r"(אילו\s+דירות|איזה\s+דירות|מה\s+יש\s+ל(?:כם|ך)|יש\s+ל(?:כם|ך)\s+(?:דיר|נכס|משהו)|מה\s+המחיר|כמה\s+(?:זה\s+)?עולה|פנויות|מה\s+זמין"
    r"|תציעי\s+לי|תראי\s+לי|תשלחי\s+לי\s+דירות|what\s+(?:apartments|properties|do\s+you\s+have)|do\s+you\s+have\s+(?:any|an?\s)"
    r"|show\s+me|any\s+listings|how\s+much\s+(?:is|does|would)|what's\s+available|what\s+is\s+available|price\s+of|recommend)",
    re.IGNORECASE,
)


def asks_listings(text: str) -> bool:
    return bool(_ASKS_LISTINGS.search(normalize(text)))


_DONE = re.compile(
    r"(^לא\b|זהו|זה\s+הכל|זה\s+הכול|תודה|להתראות|ביי|אין\s+עוד|^no\b|that's\s+all|that\s+is\s+all|nothing\s+else|bye|thank|that's\s+it)",
    re.IGNORECASE,
)


def wants_to_end(text: str) -> bool:
    return bool(_DONE.search(normalize(text)))


def only_holds_floor(text: str, language: str | None = None) -> bool:
    """ "רגע", "wait": the caller took the turn but has not said anything yet.

    The word lists live in :mod:`dialog.cues` (:func:`dialog.cues.only_holds_floor`); without
    a language both lexicons are tried."""
    from dialog import cues  # cues tokenises with this module

    languages = (language,) if language else ("he-IL", "en-US")
    return any(cues.only_holds_floor(text, lang) for lang in languages)


# -- all slots at once -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    area: str | None = None
    property_type: str | None = None
    rooms: float | None = None
    budget_ils: int | None = None
    timeframe: str | None = None
    name: str | None = None

    def any(self) -> bool:
        return any(getattr(self, f) is not None for f in self.__slots__)


def extract(text: str, hebrew: bool, expecting: str | None = None) -> Found:
    """Everything the utterance says about the lead. ``expecting`` is the slot just asked about."""
    timeframe = timeframe_in(text, hebrew)
    rooms = rooms_in(text)
    budget = budget_in(text, expecting=expecting in ("budget", "budget_ils") and timeframe is None and rooms is None)
    area = area_in(text, hebrew)
    prop = property_in(text, hebrew)
    name = None
    if expecting == "name" or re.search(r"קוראים\s+לי|שמי|השם\s+שלי|my\s+name|name's|call\s+me", text, re.IGNORECASE):
        if not (area or prop or budget or timeframe or rooms) or expecting != "name":
            name = name_in(text, expecting=expecting == "name")
    return Found(area, prop, rooms, budget, timeframe, name)


_SPLITTABLE = set(_NUM_WORDS) | _HALF | _QUARTER | _HUNDRED | {"אני", "אנחנו", "בעצם", "לא"}
