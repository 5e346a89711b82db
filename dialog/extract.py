"""Slot extraction from a caller's words, Hebrew and English (pure functions).

The offline brain's ears, and the OpenAI brain's cross-check of the model's tool call (numbers
the model misreads — "מיליון שמונה" is 1.8 million, not one — are taken from here). Every
extractor returns None when it is not sure; the dialog asks rather than guesses.

Written for what recognisers give: Google's Hebrew has no niqqud, glues one-letter prefixes
to the next word ("בחולון", "משלושה", "במיליון"), mixes digits and words ("מיליון 800 אלף",
"3 וחצי חדרים") and writes abbreviations with or without gershayim ('ת"א', 'ר"ג').
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dialog.places import PLACES, Place

# -- normalisation ---------------------------------------------------------------------------

# A caller's turn is seconds of speech; anything longer is read from its start only, so a runaway
# transcript cannot make extraction slow.
MAX_CHARS = 2000

_PUNCT = re.compile(r"[,;:!?()\[\]…״“”\"]")


def normalize(text: str) -> str:
    t = text.lower().replace("״", '"').replace("׳", "'").replace("–", " ").replace("—", " ")
    t = t.replace("’", "'").replace("‘", "'")
    t = t.replace("מליון", "מיליון").replace("₪", " שקל ")
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)  # 1,800,000 -> 1800000
    t = re.sub(r"(?<!\d)-|-(?!\d)", " ", t)  # tel-aviv, מ-AgentLocator, but keep 050-123
    t = re.sub(r"(\d+(?:\.\d+)?)\s*k\b", r"\1 thousand", t)
    t = re.sub(r"(\d+(?:\.\d+)?)\s*m\b", r"\1 million", t)
    return t


_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z']+|[\u05d0-\u05ea'\"]+")
_PREFIX_LETTERS = frozenset("ובלמכשה")


def tokens(text: str) -> list[str]:
    """Normalised tokens. A Hebrew prefix glued to a number or an amount word is split off
    ("ושלוש" -> "ו", "שלוש"; "משלושה" -> "מ", "שלושה"; "במיליון" -> "ב", "מיליון"), and a
    leading ו ("and") off a few other words ("ואני", "ולא")."""
    out: list[str] = []
    for tok in _TOKEN.findall(normalize(text)):
        tok = tok.strip("'\"") if not tok.endswith("'") or len(tok) < 3 else tok
        if tok:
            out.extend(_split_prefix(tok))
    return out


def _split_prefix(tok: str) -> tuple[str, ...]:
    if tok in _NUM_WORDS or len(tok) < 2 or tok[0] not in _PREFIX_LETTERS:
        return (tok,)
    if tok[0] == "ו" and tok[1:] in _SPLITTABLE:
        return ("ו", tok[1:])
    for size in (1, 2, 3):
        head, rest = tok[:size], tok[size:]
        if len(rest) < 2 or not set(head) <= _PREFIX_LETTERS:
            break
        if rest in _AMOUNT_WORDS:
            return (*(("ו", head[1:]) if head[0] == "ו" and len(head) > 1 else (head,)), rest)
    return (tok,)


# -- numbers ---------------------------------------------------------------------------------

_NUM_WORDS: dict[str, float] = {
    # Hebrew, both genders and construct forms
    "אפס": 0, "אחד": 1, "אחת": 1, "שניים": 2, "שתיים": 2, "שתים": 2, "שני": 2, "שתי": 2, "שלושה": 3, "שלוש": 3,
    "שלשה": 3, "ארבעה": 4, "ארבע": 4, "חמישה": 5, "חמש": 5, "שישה": 6, "שש": 6, "שבעה": 7, "שבע": 7,
    "שמונה": 8, "תשעה": 9, "תשע": 9, "עשרה": 10, "עשר": 10, "עשרים": 20, "שלושים": 30, "ארבעים": 40,
    "חמישים": 50, "שישים": 60, "שבעים": 70, "שמונים": 80, "תשעים": 90, "מאה": 100, "מאתיים": 200,
    "אלפיים": 2000,
    "שלושת": 3, "ארבעת": 4, "חמשת": 5, "ששת": 6, "שבעת": 7, "שמונת": 8, "תשעת": 9, "עשרת": 10,
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
_TEN = {"עשר", "עשרה"}  # "חמש עשרה", "שנים עשר": the teens
_NUMERIC = set(_NUM_WORDS) | _HALF | _QUARTER | _HUNDRED | _FILLER
_AMOUNT_WORDS = set(_NUM_WORDS) | _HALF | _QUARTER | _HUNDRED | _MILLION | _THOUSAND


def _is_digits(tok: str) -> bool:
    return tok[:1].isdigit()


def words_value(toks: list[str]) -> float | None:
    """Value of one spoken number: "שניים וחצי" -> 2.5, "eight hundred" -> 800, "עשרים ושלוש" -> 23,
    "חמש עשרה" -> 15.

    None when the run is not one number ("חצי שלושה", "2 3"): parts must come in falling
    order and a half or quarter ends the number.
    """
    total = 0.0
    last: float | None = None  # the previous part's size: the next one must be smaller
    ended = False
    seen = False
    unit_word = False  # the previous part was a unit said as a word ("חמש"): "עשרה" may follow
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
        elif tok in _TEN and unit_word and last is not None and 1 <= last < 10:
            total += 10  # a teen
            last = 1
            unit_word = False
            continue
        else:
            value = float(tok) if _is_digits(tok) else _NUM_WORDS.get(tok)
            if value is None or (last is not None and (value >= last or last < 10)):
                return None
            total += value
            last = value if not _is_digits(tok) else 1.0  # after digits only a half fits ("3 וחצי")
            unit_word = not _is_digits(tok) and value < 10
            seen = True
            continue
        unit_word = False
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

# What a count can be of besides money: a number right before one of these is not an amount.
_ROOM_WORDS = {"חדרים": 0, "חדר": 0, "חד'": 0, "rooms": 0, "room": 0, "bedrooms": 1, "bedroom": 1}
_UNITS = {
    "חודש": 1, "חודשים": 1, "month": 1, "months": 1, "שבוע": 0.25, "שבועות": 0.25, "week": 0.25,
    "weeks": 0.25, "שנה": 12, "שנים": 12, "year": 12, "years": 12,
}
_FIXED_UNITS = {"חודשיים": 2, "שבועיים": 0.5, "שנתיים": 24}
_COUNTED = (
    set(_ROOM_WORDS) | {"חדרי", "קומה", "קומות", "מטר", "מטרים", 'מ"ר', "מר", "floor", "floors", "meters", "sqm",
                        "ילדים", "kids", "children", "דקות", "שעות", "minutes", "hours", "יום", "ימים", "days"}
    | set(_UNITS) | set(_FIXED_UNITS)
)


def _counts_something(toks: list[str], end: int) -> bool:
    """The number ending before ``end`` counts rooms, months, floors... (not shekels)."""
    return end < len(toks) and toks[end] in _COUNTED


# -- deal: buying or renting ---------------------------------------------------------------------

BUY, RENT = "buy", "rent"
_DEAL_WORDS: dict[str, str] = {
    **dict.fromkeys(("לקנות", "קנייה", "קניה", "לקנייה", "לקניה", "בקנייה", "רכישה", "לרכישה", "לרכוש",
                     "למכירה", "משכנתא", "משכנתה", "למשכנתא", "המשכנתא", "buy", "buying", "purchase",
                     "purchasing", "mortgage"), BUY),
    **dict.fromkeys(("לשכור", "שכירות", "לשכירות", "בשכירות", "השכירות", "להשכרה", "שכ\"ד", "rent", "renting",
                     "rental", "lease", "leasing"), RENT),
}
_DEAL_PHRASES = (("for", "sale", BUY), ("שכר", "דירה", RENT), ("for", "rent", RENT))
_NEGATION = {"לא", "ולא", "not", "no"}


def _monthly(toks: list[str]) -> bool:
    """An amount said per month: "לחודש", "8000 בחודש", "שכר דירה חודשי", "a month" / "per month"
    after an amount, "monthly" (not "בחודש הבא", "within a month")."""
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i > 0 else ""
        amount_before = _is_digits(prev) or prev in _AMOUNT_WORDS or prev in _CURRENCY
        if tok in ("לחודש", "חודשי", "חודשית", "monthly", "month's"):
            return True
        if tok == "בחודש" and amount_before:
            return True
        if tok in ("month", "mo") and prev in ("a", "per", "each", "every") and i > 1 and (
            _is_digits(toks[i - 2]) or toks[i - 2] in _AMOUNT_WORDS or toks[i - 2] in _CURRENCY
        ):
            return True
    return False


def deal_in(text: str) -> str | None:
    """ "buy" / "rent" when the caller says which (the last said and not negated: "לשכור, לא
    לקנות" is a rent); an amount said per month ("לחודש") is a rent."""
    toks = tokens(text)
    found: str | None = None
    for i, tok in enumerate(toks):
        deal = _DEAL_WORDS.get(tok)
        for a, b, phrase_deal in _DEAL_PHRASES:
            if tok == a and i + 1 < len(toks) and toks[i + 1] == b:
                deal = phrase_deal
        if deal and not (i > 0 and toks[i - 1] in _NEGATION):
            found = deal
    if found is None and _monthly(toks):
        found = RENT
    return found


# -- budget ----------------------------------------------------------------------------------

# A deal follows from the amount when the words don't say: nobody buys for 8,000, nobody rents for 2 million.
RENT_AT_MOST = 50_000
BUY_FROM = 200_000
_CURRENCY = {"שקל", "שקלים", 'ש"ח', "שח", "nis", "ils", "shekel", "shekels", "לחודש", "בחודש", "monthly"}
_AMOUNT_CUES = {"עד", "מקסימום", "בסביבות", "בערך", "כ", "של", "תקציב", "שכירות", "שכר", "בין", "around", "about",
                "up", "to", "budget", "rent", "max", "maximum", "under", "between", "roughly"}


@dataclass(frozen=True, slots=True)
class Budget:
    amount: int | None  # shekels (a month, for a rent)
    deal: str | None = None  # what the words or the amount say: "buy" / "rent"
    # A bare number after the budget question that is millions to a buyer and thousands to a
    # renter ("שמונה"): the dialog asks which before storing it.
    unclear: float | None = None


def budget_in(text: str, *, expecting: bool = False, deal: str | None = None) -> int | None:
    """A budget in shekels: "מיליון וחצי", "מיליון שמונה" (1.8 million), "2.5 מיליון", "800 אלף",
    "עד שמונה אלף לחודש", "two million shekels". See :func:`budget_reading`."""
    return budget_reading(text, expecting=expecting, deal=deal).amount


def budget_reading(text: str, *, expecting: bool = False, deal: str | None = None) -> Budget:
    """The amount the caller said (the last one: "a million... no, a million and a half"; a
    range's top), and whether it is a purchase or a rent.

    After a million, a lone unit is hundreds of thousands ("מיליון שמונה" = 1.8 million), a
    bigger number thousands ("מיליון שמונה מאות", "2 מיליון 200"). With ``expecting`` (the
    agent just asked for the budget) a bare number is read the way Israelis answer that
    question, given ``deal`` (what is known already): to a buyer "שתיים וחצי" is millions and
    "800" thousands; to a renter "שמונה" is 8,000; not knowing which, 4–30 is left
    ``unclear`` (ask: buy or rent?).
    """
    toks = _join_decimals(tokens(_PHONE_LIKE.sub(" ", text)))  # "052-7654321" is not 7.6 million shekels
    said_deal = deal_in(text)
    known = deal or said_deal
    found: list[int] = []
    weak: list[int] = []  # plain digits of 1,000-99,999 with no word of money next to them
    consumed: set[int] = set()
    for i, tok in enumerate(toks):
        if i in consumed:
            continue
        if tok in _MILLION:
            left = _run_before(toks, i)
            value = words_value(left) if left else 1.0
            if value is None and all(t in _FILLER for t in left):
                value = 1.0  # "a million"
            if value is None:
                continue
            amount = value * 1_000_000
            after = _run_after(toks, i + 1)
            end = i + 1 + len(after)
            extra = words_value(after) if after else None
            if extra is not None and not _counts_something(toks, end):
                if extra < 1:  # "מיליון וחצי", "a million and a half"
                    amount += extra * 1_000_000
                elif extra < 10:  # "מיליון שמונה", "a million eight"
                    amount += extra * 100_000
                elif extra < 1000:  # "מיליון ושמונה מאות (אלף)", "2 מיליון 200"
                    amount += extra * 1000
                elif extra < 1_000_000:  # "מיליון 800000"
                    amount += extra
                consumed.update(range(i + 1, end))
                if end < len(toks) and toks[end] in _THOUSAND:
                    consumed.add(end)
            found.append(round(amount))
        elif tok in _THOUSAND:
            left = _run_before(toks, i)
            value = words_value(left) if left else None
            if not value:
                continue
            amount = value * 1000
            after = _run_after(toks, i + 1)
            extra = words_value(after) if after else None
            if extra is not None and 1 <= extra < 1000 and not _counts_something(toks, i + 1 + len(after)):
                amount += extra  # "שבעת אלפים וחמש מאות"
                consumed.update(range(i + 1, i + 1 + len(after)))
            found.append(round(amount))
            top = _range_top(toks, i + 1 + (len(after) if extra is not None and extra < 1000 else 0), value)
            if top is not None:  # "שבע מאות אלף עד שמונה מאות": the top, in the same thousands
                found.append(round(top * 1000))
        elif _is_digits(tok):
            value = float(tok)
            if value >= 100_000:
                found.append(int(value))
            elif 1000 <= value < 100_000 and value == int(value) and not _counts_something(toks, i + 1):
                nxt = toks[i + 1] if i + 1 < len(toks) else ""
                prev = toks[i - 1] if i > 0 else ""
                if nxt in _CURRENCY or prev in _AMOUNT_CUES or _monthly(toks[i : i + 3]):
                    found.append(int(value))
                else:
                    weak.append(int(value))
    if found or (weak and expecting):
        amount = (found or weak)[-1]
        return Budget(amount, said_deal or _deal_of(amount, text))
    if not expecting and not (known and _cued_number(toks)):
        return Budget(None, said_deal)
    value = _bare_number(toks if expecting else toks[_cued_number(toks) :])
    if value is None:
        return Budget(None, said_deal)
    if known == RENT:
        amount = value * 1000 if value < 100 else (value if 1000 <= value <= RENT_AT_MOST else None)
    elif known == BUY:
        amount = value * 1_000_000 if 0.5 <= value <= 30 else (value * 1000 if 100 <= value <= 20_000 else None)
    elif 0.5 <= value < 4:
        amount = value * 1_000_000  # "שתיים וחצי": nobody rents for 2,500
    elif 4 <= value <= 30:
        return Budget(None, said_deal, unclear=value)  # 8 million or 8,000 a month?
    elif 100 <= value < 2000:
        amount = value * 1000
    elif 2000 <= value <= RENT_AT_MOST:
        amount = value
    else:
        amount = None
    if amount is None:
        return Budget(None, said_deal)
    amount = round(amount)
    return Budget(amount, said_deal or (None if known else _deal_of(amount, text)))


def _range_top(toks: list[str], j: int, low: float) -> float | None:
    """A range's top said without its unit after ``j``: "(700 אלף) עד שמונה מאות"."""
    if j >= len(toks) or toks[j] not in ("עד", "ל", "או", "to", "or"):
        return None
    run = _run_after(toks, j + 1)
    end = j + 1 + len(run)
    top = words_value(run) if run else None
    if top is None or end < len(toks) and (toks[end] in _MONEY_WORDS or toks[end] in _COUNTED):
        return None
    return top if low < top <= 2 * low else None


def _deal_of(amount: int, text: str) -> str | None:
    if _monthly(tokens(text)) or amount <= RENT_AT_MOST:
        return RENT
    return BUY if amount >= BUY_FROM else None


def _cued_number(toks: list[str]) -> int:
    """Where a number said right after "עד", "בסביבות", "תקציב"... starts (0: none)."""
    for i, tok in enumerate(toks[:-1]):
        if tok in ("עד", "מקסימום", "בסביבות", "תקציב", "up", "budget", "around") and (
            toks[i + 1] in _NUM_WORDS or _is_digits(toks[i + 1]) or (tok == "up" and i + 2 < len(toks))
        ):
            return i + 1
    return 0


def _bare_number(toks: list[str]) -> float | None:
    """The first number said, as an answer to "how much?" ("בסביבות שמונה", "עד 10")."""
    for i, tok in enumerate(toks):
        if (tok in _NUM_WORDS or _is_digits(tok) or tok in _HALF) and not (i > 0 and toks[i - 1] in ("יום", "ביום")):
            run = _run_after(toks, i)
            if not run or _counts_something(toks, i + len(run)):
                return None
            value = words_value(run)
            nxt = toks[i + len(run)] if i + len(run) < len(toks) else ""
            more = _NUM_WORDS.get(nxt)
            if len(run) == 1 and value is not None and value < 10 and more is not None and 1 <= more < 10 and (
                i + len(run) + 1 >= len(toks) or toks[i + len(run) + 1] not in _COUNTED | _MONEY_WORDS
            ):
                # "שתיים שמונה" is 2.8 (million); "שתיים שלוש" a range, its top
                return more if more == value + 1 else value + more / 10
            return value
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
_RANGE_JOIN = {"ל", "עד", "או", "to", "or", "-"}
_MONEY_WORDS = _MILLION | _THOUSAND | _CURRENCY


def rooms_in(text: str, *, expecting: bool = False) -> float | None:
    """Room count, Israeli style (living room included): "4 חדרים", "שלוש וחצי חדרים", "חדר
    וחצי", "3 bedrooms" = 4, "שלושה חדרי שינה" = 4. A range ("ארבע-חמש", "4 או 5") is its lower
    end. With ``expecting`` (the agent just asked how many rooms) a bare "ארבע וחצי" will do."""
    toks = tokens(text)
    for i, tok in enumerate(toks):
        bonus = _ROOM_WORDS.get(tok)
        if bonus is None and tok == "חדרי" and i + 1 < len(toks) and toks[i + 1] == "שינה":
            bonus = 1  # bedrooms
        if bonus is None:
            continue
        left = _run_before(toks, i)
        value = words_value(left) if left else None
        if value is None and i > 0 and toks[i - 1] in _ASR_THREE:
            value = 3.0  # Whisper hears a synthetic "three rooms" as "free room"
        if value is None and tok in ("חדר", "room") and toks[i + 1 : i + 3] == ["ו", "חצי"]:
            value = 1.5  # "חדר וחצי"
        if value is None and i + 1 < len(toks) and toks[i + 1] in ("אחד", "one"):
            value = 1.0  # "חדר אחד"
        if value is None and tok in ("חדר", "room") and left == [] and i > 0 and toks[i - 1] in ("דירת",):
            value = 1.0  # "דירת חדר"
        if value is not None and value == int(value) and toks[i + 1 : i + 3] == ["ו", "חצי"]:
            value += 0.5  # "2 חדרים וחצי"
        if value is not None:
            value = _range_low(toks, i - len(left), value)
        if value is not None and 1 <= value <= 12:
            return value + bonus  # bedrooms + the living room
    if expecting and not any(t in _MONEY_WORDS for t in toks):
        for i, tok in enumerate(toks):
            if tok in _NUM_WORDS or _is_digits(tok):
                run = _run_after(toks, i)
                value = words_value(run) if run else None
                if value is not None and 1 <= value <= 12 and not _counts_something(toks, i + len(run)):
                    return value
                return None
    return None


def _range_low(toks: list[str], start: int, value: float) -> float:
    """ "ארבע חמש חדרים", "בין 4 ל-5", "four or five": the lower end of a range said before ``start``."""
    k = start
    if k > 0 and toks[k - 1] in _RANGE_JOIN:
        k -= 1
    low_run = _run_before(toks, k)
    low = words_value(low_run) if low_run else None
    if low is not None and low < value <= low + 2:
        return low
    return value


# -- property type ---------------------------------------------------------------------------

# (pattern, Hebrew label, English label, tier): tier 0 names a kind of property; tier 1 is
# the generic "apartment" (a more telling word anywhere wins: "דירה, עדיף פנטהאוז"); tier 2
# is a word that is usually a feature ("מחסן"), a type only when nothing else is said.
# Overlapping matches: the longer wins ("דירת גג" over "דירה", "בית צמוד קרקע" over "בית").
_PROPERTY: list[tuple[re.Pattern[str], str, str, int]] = [
    (re.compile(p, re.IGNORECASE), he, en, tier)
    for p, he, en, tier in [
        (r"דירת\s+גן|דירה\s+עם\s+גינה|garden\s+(?:apartment|flat)", "דירת גן", "garden apartment", 0),
        (r"(?:מיני\s+)?(?:פנטהאוז|פנטהאוס|פנטאוז|פנטהאוזים)|penthouse", "פנטהאוז", "penthouse", 0),
        (r"דירת\s+גג|rooftop\s+apartment", "דירת גג", "rooftop apartment", 0),
        (r"דופלקס|duplex", "דופלקס", "duplex", 0),
        (r"טריפלקס|triplex", "טריפלקס", "triplex", 0),
        (r"דו\s*משפחתי|semi\s*detached", "דו-משפחתי", "semi-detached house", 0),
        (r"קוטג'?(?=\s|$)|cottage", "קוטג'", "cottage", 0),
        (r"וילה|villa", "וילה", "villa", 0),
        (r"(?:בית\s+)?צמוד(?:ת|ה|י)?\s+קרקע", "צמוד קרקע", "ground-level house", 0),
        (r"יחידת\s+דיור|יחידות\s+דיור|housing\s+unit|granny\s+flat", "יחידת דיור", "housing unit", 0),
        (r"(?:^|\s)(?:ה|ב|ל)?בית\s+פרטי|(?:^|\s)(?:ה|ל)?בית(?=\s|$)(?!\s+(?:שמש|הכרם|ספר|וגן|שאן|כנסת))"
         r"|\bprivate\s+house\b|\bhouse\b|\bhome\b(?!\s+office)", "בית פרטי", "house", 0),
        (r"(?:דירת\s+)?סטודיו|studio", "דירת סטודיו", "studio", 0),
        (r"משרד|\boffices?\b", "משרד", "office", 0),
        (r"מגרש|\bplot\b|\bland\b", "מגרש", "plot", 0),
        (r"חנות|\bshop\b|\bstore\b", "חנות", "shop", 0),
        (r"נכס\s+מסחרי|commercial\s+property", "נכס מסחרי", "commercial property", 0),
        (r"בניין\s+(?:שלם|מגורים)|whole\s+building", "בניין", "building", 0),
        (r"(?<!שכר\s)(?<![\u05d0-\u05ea])(?:ה|ל)?דיר(?:ה|ת|ות)(?!\s+(?:שלנו|שלי|הנוכחית))|\bapartment|\bflat\b|\bcondo",
         "דירה", "apartment", 1),
        (r"מחסן|storage\s+unit", "מחסן", "storage unit", 2),
    ]
]


def property_in(text: str, hebrew: bool) -> str | None:
    t = normalize(text)
    hits: list[tuple[int, int, int, int]] = []  # (tier, start, -length, row)
    for row, (pattern, _he, _en, tier) in enumerate(_PROPERTY):
        for m in pattern.finditer(t):
            start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            hits.append((tier, start, -(m.end() - start), row))
    kept: list[tuple[int, int, int, int]] = []
    for hit in sorted(hits, key=lambda h: h[2]):  # longest first
        start, end = hit[1], hit[1] - hit[2]
        if not any(k[1] < end and start < k[1] - k[2] for k in kept):
            kept.append(hit)
    if not kept:
        return None
    _tier, _start, _len, row = min(kept)
    _p, he, en, _t = _PROPERTY[row]
    return he if hebrew else en


# -- area ------------------------------------------------------------------------------------

_HE_PREFIX = "(?:[ובלמהשכ]{0,2})"
_BOUNDARY_L = r"(?:^|(?<=[\s,.;!?\"'(]))"
_BOUNDARY_R = r"(?=$|[\s,.;!?\"')])"
# A place named as a landmark or as where the caller lives now, not where they look.
_ASIDE = re.compile(
    r"(?:ליד|קרוב|סמוך|צמוד|מול|near|close\s+to|next\s+to|(?:גר|גרה|גרים|גרות|live|living|lives)"
    r"(?:\s+(?:כרגע|עכשיו|now|currently))?(?:\s+in)?)\s*$"
)


def _place_patterns() -> list[tuple[re.Pattern[str], Place]]:
    rows: list[tuple[re.Pattern[str], Place]] = []
    for place in PLACES:
        for name in (place.he, place.en, *place.aliases):
            n = normalize(name)
            hebrew = bool(re.search(r"[\u05d0-\u05ea]", n))
            body = re.escape(n).replace(r"\ ", r"\s+")
            if hebrew and n.startswith("ה") and len(n.split()[0]) > 2:
                # "הצפון הישן" said "בצפון הישן": a prefix swallows the article
                rows.append((re.compile(_BOUNDARY_L + "[ובלמש]{1,2}" + re.escape(n[1:]).replace(r"\ ", r"\s+")
                                        + _BOUNDARY_R), place))
            prefix = _HE_PREFIX if hebrew else r"(?:the\s+)?"
            rows.append((re.compile(_BOUNDARY_L + prefix + body + _BOUNDARY_R), place))
    # longer names first, so "הרצליה פיתוח" beats "הרצליה" at the same spot
    rows.sort(key=lambda r: -len(r[0].pattern))
    return rows


_PLACE_PATTERNS = _place_patterns()


def area_in(text: str, hebrew: bool) -> str | None:
    """Where the caller looks: the last place named ("not Holon, Bat Yam" -> Bat Yam), not one
    named as a landmark or as home ("ליד", "קרוב ל", "גרים ב") unless it is the only one; a
    neighbourhood named with its city is the neighbourhood ("בנווה שאנן בחיפה")."""
    t = normalize(text[:MAX_CHARS])
    hits: list[tuple[int, int, Place]] = []
    covered = bytearray(len(t) + 1)
    for pattern, place in _PLACE_PATTERNS:
        for m in pattern.finditer(t):
            if covered[m.start()]:
                continue  # inside a longer name already found
            hits.append((m.start(), m.end(), place))
            covered[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    if not hits:
        return None
    hits.sort(key=lambda h: h[0])
    main = [h for h in hits if not _ASIDE.search(t[max(0, h[0] - 40) : h[0]])] or hits
    place = main[-1][2]
    if place.city_he is None:
        inside = [h[2] for h in hits if h[2].city_he == place.he]
        if inside:
            place = inside[-1]
    return place.label(hebrew)


def place_names(hebrew: bool = True) -> list[str]:
    """Every place name the extractor knows (for the recogniser's phrase hints)."""
    return [p.he if hebrew else p.en for p in PLACES]


# -- timeframe -------------------------------------------------------------------------------

_HE_WORD_L = r"(?<![\u05d0-\u05ea])"
_HE_WORD_R = r"(?![\u05d0-\u05ea])"
_NOW = re.compile(
    _HE_WORD_L + r"(?:מיד|מיידי|מיידית|מידי|דחוף|דחוף\s+לי|כמה\s+שיותר\s+מהר|בהקדם|בהקדם\s+האפשרי|כבר\s+עכשיו"
    r"|מהיום\s+למחר|אתמול)" + _HE_WORD_R
    + r"|\b(?:asap|as\s+soon\s+as\s+possible|right\s+away|immediately|urgent(?:ly)?|right\s+now)\b",
    re.IGNORECASE,
)
_NOW_ALONE = re.compile(r"^\W*(?:עכשיו|now)\W*$")  # "עכשיו" as the whole answer
_SOON = re.compile(_HE_WORD_L + r"בקרוב" + _HE_WORD_R + r"|\bsoon\b", re.IGNORECASE)
_FLEX = re.compile(
    r"(אין\s+לחץ|לא\s+דחוף|לא\s+לוחץ|אין\s+לנו\s+לחץ|בלי\s+לחץ|לא\s+ממהר(?:ים|ת|ות)?|לא\s+בלחץ|no\s+rush|no\s+hurry"
    r"|not\s+in\s+a\s+hurry|just\s+looking|flexible|גמיש|גמישים)",
    re.IGNORECASE,
)
_FEW = {"כמה", "few", "couple", "several"}
_SOON_AFTER = ("הקרוב", "הקרובה", "הבא", "הבאה")

_HE_MONTHS = ("ינואר", "פברואר", "מרץ", "מרס", "אפריל", "מאי", "יוני", "יולי", "אוגוסט", "ספטמבר", "אוקטובר",
              "נובמבר", "דצמבר")
_HE_ANCHORS = {
    "החגים": "החגים", "חגים": "החגים", "פסח": "פסח", "ראש השנה": "ראש השנה", "סוכות": "סוכות", "חנוכה": "חנוכה",
    "הקיץ": "הקיץ", "קיץ": "הקיץ", "החורף": "החורף", "חורף": "החורף", "האביב": "האביב", "אביב": "האביב",
    "הסתיו": "הסתיו", "סתיו": "הסתיו", "סוף השנה": "סוף השנה", "סוף החודש": "סוף החודש", "סוף הקיץ": "סוף הקיץ",
    **{m: m for m in _HE_MONTHS},
}
_HE_REL = {"עד": "עד", "לפני": "לפני", "אחרי": "אחרי", "אחר": "אחרי", "לקראת": "לקראת", "בתחילת": "בתחילת",
           "בסוף": "בסוף", "מ": "אחרי"}
_HE_ANCHOR = re.compile(
    _HE_WORD_L + r"(?:(?P<rel>עד|לפני|אחרי|לקראת|בתחילת|בסוף)\s+|(?P<glued>ב))(?P<anchor>"
    + "|".join(sorted((re.escape(a).replace(r"\ ", r"\s+") for a in _HE_ANCHORS), key=len, reverse=True))
    + ")" + _HE_WORD_R
)
_EN_ANCHOR = re.compile(
    r"\b(?P<rel>by|before|after|until|till|in|around|towards?|at)\s+(?:the\s+)?(?P<anchor>holidays|high\s+holidays"
    r"|summer|winter|spring|fall|autumn|end\s+of\s+(?:the|this)\s+year|end\s+of\s+(?:the|this)\s+month|passover"
    r"|rosh\s+hashana(?:h)?|sukkot|hanukkah|january|february|march|april|may|june|july|august|september|october"
    r"|november|december)\b",
    re.IGNORECASE,
)


def timeframe_in(text: str, hebrew: bool, *, expecting: bool = False) -> str | None:
    """When the caller means to move or buy: "מיידי", "תוך חודשיים", "אחרי החגים", "עד סוף
    השנה", "בקיץ", "גמיש"... A range ("חודש חודשיים", "שלושה ארבעה חודשים") is its far end.
    With ``expecting`` a bare "עכשיו" is immediate."""
    t = normalize(text)
    anchored = _anchor_in(t, hebrew)
    if anchored:
        return anchored  # "מיד אחרי החגים" is after the holidays
    if _NOW.search(t) and not re.search(r"לא\s+דחוף", t):
        return "מיידי" if hebrew else "as soon as possible"
    duration = _duration_in(tokens(text), hebrew)
    if duration:
        return duration
    if _FLEX.search(t):
        return "גמיש" if hebrew else "flexible"
    if _SOON.search(t):
        return "בקרוב" if hebrew else "soon"
    if expecting and _NOW_ALONE.match(t):
        return "מיידי" if hebrew else "as soon as possible"
    return None


def _anchor_in(t: str, hebrew: bool) -> str | None:
    m = _HE_ANCHOR.search(t)
    if m:
        anchor = _HE_ANCHORS[re.sub(r"\s+", " ", m.group("anchor"))]
        if m.group("glued"):
            # "בקיץ", "בספטמבר", "בפסח": ב swallows the article
            label = "ב" + (anchor[1:] if anchor.startswith("ה") and anchor not in ("החגים",) else anchor)
            if anchor.startswith("סוף"):
                label = "ב" + anchor
        else:
            label = f"{_HE_REL[m.group('rel')]} {anchor}"
        return label if hebrew else _EN_LABELS.get(label, label)
    m = _EN_ANCHOR.search(t)
    if m:
        rel = {"until": "by", "till": "by", "before": "before", "toward": "towards", "at": "at"}.get(
            m.group("rel").lower(), m.group("rel").lower())
        anchor = re.sub(r"\s+", " ", m.group("anchor").lower())
        if anchor.startswith("end of"):
            anchor = "end of the " + anchor.rsplit(" ", 1)[-1]
        article = "" if anchor in _EN_NAMES else "the "
        return f"{rel} {article}{_EN_NAMES.get(anchor, anchor)}"
    return None


_EN_NAMES = {m: m.capitalize() for m in ("january", "february", "march", "april", "may", "june", "july", "august",
                                          "september", "october", "november", "december", "passover", "sukkot",
                                          "hanukkah")}
_EN_NAMES.update({"rosh hashana": "Rosh Hashana", "rosh hashanah": "Rosh Hashana"})
_EN_LABELS = {"אחרי החגים": "after the holidays", "עד סוף השנה": "by the end of the year", "בקיץ": "in the summer"}


def _duration_in(toks: list[str], hebrew: bool) -> str | None:
    spans: list[tuple[int, float | None]] = []  # (token index, months; None: "a few")
    for i, tok in enumerate(toks):
        months: float | None = None
        few = False
        if tok in ("לחודש", "לשנה", "חודשי", "חודשית") or _monthly(toks[max(0, i - 2) : i + 1]):
            continue  # "6000 לחודש", "8,000 a month": a rent, not a date
        if tok not in _UNITS and tok not in _FIXED_UNITS and tok[:1] in ("ב", "ל", "ו") and (
            tok[1:] in _UNITS or tok[1:] in _FIXED_UNITS
        ):
            tok = tok[1:]  # "בחודשיים", "לשנה"
        if tok in _FIXED_UNITS:
            months = _FIXED_UNITS[tok]
            base = {"חודשיים": 1, "שבועיים": 0.25, "שנתיים": 12}[tok]
            more = _NUM_WORDS.get(toks[i + 1]) if i + 1 < len(toks) else None
            if more is not None and more * base == months + base:
                months = more * base  # "חודשיים שלושה": the far end
        elif tok in _UNITS:
            before = toks[max(0, i - 3) : i]
            after = toks[i + 1] if i + 1 < len(toks) else ""
            if any(b in _FEW for b in before) or (after in ("הקרובים", "הקרובות") and tok in ("חודשים", "שבועות")):
                few = True
            else:
                run = _run_before(toks, i)
                value = words_value(run) if run else None
                if value is None and (
                    (i > 0 and toks[i - 1] in ("תוך", "בתוך", "בעוד", "עוד", "a", "next", "one", "within"))
                    or after in _SOON_AFTER or toks[i + 1 : i + 3] == ["ו", "חצי"]
                ):
                    value = 1.0  # "תוך חודש", "within a month", "בשנה הקרובה", "next year", "שנה וחצי"
                if value is not None and toks[i + 1 : i + 3] == ["ו", "חצי"]:
                    value += 0.5  # "שנה וחצי"
                if value is not None:
                    months = value * _UNITS[tok]
        if few:
            spans.append((i, None))
        elif months and months <= 120:
            spans.append((i, months))
    if not spans:
        return None
    i, months = spans[0]
    for j, more in spans[1:]:
        if j - i <= 2 and months is not None and more is not None:
            months, i = max(months, more), j  # "חודש חודשיים": the far end
    if months is None:
        unit = toks[i].lstrip("בלו")
        if unit in ("שבועות", "weeks"):
            return "תוך כמה שבועות" if hebrew else "within a few weeks"
        return "תוך כמה חודשים" if hebrew else "within a few months"
    return _say_months(months, hebrew)


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
    "אבל", "מדבר", "מדברת", "מדברים", "שוב", "עכשיו", "כרגע", "בעצם", "אז", "טוב", "תודה", "מהחברה", "בקשר",
    "looking", "interested", "not", "just", "calling", "fine", "good", "sure", "ok", "okay", "here",
    "trying", "thinking", "a", "the", "in", "and", "i", "we", "from", "with", "my", "is", "so", "very",
    "yes", "no", "still", "also", "right", "correct", "sorry", "wondering", "hoping", "planning", "moving",
    "speaking", "but", "again", "about",
}
# Joins a surname of two words: "מרים בן דוד", "Anna van Dijk".
_NAME_JOIN = {"בן", "בר", "אבו", "אל", "דה", "van", "von", "de", "da", "del", "ben", "bar"}
# Said before the answer, not part of it: "כן, יוסי", "בשמחה, יוסי", "sure, it's Tamar".
_NAME_LEAD = {"כן", "בטח", "בשמחה", "אה", "אהה", "אממ", "אמ", "טוב", "אוקיי", "אוקי", "נו", "כמובן", "ברור",
              "yes", "yeah", "sure", "ok", "okay", "um", "uh", "oh", "well", "of", "course"}
_GREETING = r"(?:(?:היי|הי|שלום|הלו|אהלן|בוקר\s+טוב|ערב\s+טוב|צהריים\s+טובים|hi|hello|hey|good\s+(?:morning|afternoon|evening))\W+)"
# Always an introduction, anywhere: "קוראים לי", "שמי", "השם שלי (הוא|זה)", "תרשמי (על שם)", "my name is".
_NAME_STRONG = re.compile(
    r"(?:קוראים\s+לי|שמי|השם\s+שלי(?:\s+(?:הוא|היא|זה))?|תרשמי(?:\s+על\s+שם)?|תרשום(?:\s+על\s+שם)?|על\s+שם"
    r"|my\s+name\s+is|my\s+name's|name's|call\s+me)\s+(.+)",
    re.IGNORECASE,
)
# An introduction at the start of the call: "מדברת שירה"; after a greeting also "שלום, זה יוסי",
# "בוקר טוב, כאן ציפי", "hi, this is Ron".
_NAME_OPENING = re.compile(r"^\W*" + _GREETING + r"?(?:מדבר|מדברת)\s+(.+)", re.IGNORECASE)
_NAME_OPENING_GREETED = re.compile(
    r"^\W*" + _GREETING + r"(?:זה|זאת|כאן|פה|אני|this\s+is|it's|i'm|i\s+am)\s+(.+)", re.IGNORECASE
)
# Only as the answer to "what's your name?": "אני דנה", "זה יוסי", "כאן רותם", "I'm Dana".
_NAME_WEAK = re.compile(r"(?:^|\s)(?:אני|זה|זאת|כאן|פה|מדבר|מדברת|i'm|i\s+am|it's|this\s+is)\s+(.+)", re.IGNORECASE)


def name_in(text: str, *, expecting: bool = False) -> str | None:
    """The caller's name: "קוראים לי דנה כהן", "שמי רון", "השם שלי זה מיכל", "תרשמי משה",
    "שלום, זה יוסי", "מדברת שירה", "my name is Tom"; when the agent just asked for it, also
    "אני דנה", "זה יוסי", "כן, יוסי" or just "Dana". Up to the first comma, two words (three
    with "בן"/"van")."""
    m = _NAME_STRONG.search(text) or _NAME_OPENING.search(text) or _NAME_OPENING_GREETED.search(text)
    if m is None and expecting:
        m = _NAME_WEAK.search(text)
    if m is not None:
        candidate = m.group(1)
    elif expecting:
        words = [w for w in re.split(r"\s+", _PUNCT.sub(" , ", text).strip()) if w]
        while words and (words[0].lower() in _NAME_LEAD or words[0] == ","):
            words = words[1:]
        candidate = " ".join(words)
        weak = _NAME_WEAK.match(candidate)
        if weak:
            candidate = weak.group(1)
        if len([w for w in candidate.split() if w != ","]) > 3:
            return None
    else:
        return None
    candidate = re.split(r"[,.;:!?]", candidate, maxsplit=1)[0]
    name: list[str] = []
    words = candidate.split()
    for k, word in enumerate(words):
        w = word.strip(".'\"")
        low = w.lower()
        if not w or low in _NAME_STOP or any(ch.isdigit() for ch in w) or low in _NUM_WORDS:
            break
        if len(w) > 2 and w[0] == "ו" and (w[1] == "ה" or w[1:] in _NAME_STOP):
            break  # "ענבל והמספר שלי", "ואני"
        if _starts_place(words[k:]):
            break
        if len(name) >= 2 and not (len(name) == 2 and name[1].lower() in _NAME_JOIN):
            break
        name.append(w if re.search(r"[\u05d0-\u05ea]", w) else w.capitalize())
    if len(name) > 1 and name[-1].lower() in _NAME_JOIN:
        name.pop()
    return " ".join(name) or None


def _starts_place(words: list[str]) -> bool:
    """The words start with a place ("בחולון", "רמת גן"), not a name that is also part of one ("אליהו")."""
    if not words:
        return False
    for size in (3, 2, 1):
        phrase = normalize(" ".join(words[:size])).strip(".,")
        if phrase in _PLACE_NAMES or (phrase[:1] in "בלמ" and phrase[1:] in _PLACE_NAMES):
            return True
    return False


_PLACE_NAMES = {normalize(n) for p in PLACES for n in (p.he, p.en, *p.aliases)}

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

def yes_no(text: str, language: str | None = None) -> bool | None:
    """The answer to a yes/no question: True ("כן", "בטח", "סגור", "יאללה", "sure"), False ("לא",
    "לא ממש", "עזבי", "בטח שלא", "not really"), None (neither, or unsure: "לא יודע", "maybe").
    The lexicons live in :mod:`dialog.cues` (:func:`dialog.cues.yes_no`)."""
    from dialog import cues  # cues tokenises with this module

    return cues.yes_no(text, language)


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


# After a booking: the caller calls the meeting off, or wants another time for it.
_CANCELS_MEETING = re.compile(
    r"((?:לבטל|תבטל(?:י|ו)?|בטל(?:י|ו)?|מבטל(?:ת|ים)?)\s+(?:את\s+)?(?:ה)?(?:פגישה|מועד)"
    r"|cancel\s+(?:the\s+|my\s+|our\s+|this\s+|that\s+)?(?:meeting|appointment))",
    re.IGNORECASE,
)
_MOVES_MEETING = re.compile(
    r"((?:להזיז|תזיז(?:י|ו)?|לדחות|תדח(?:י|ו)|לשנות|תשנ(?:י|ו)|להקדים|תקדימ(?:י|ו))\s+(?:את\s+)?(?:ה)?(?:פגישה|מועד)"
    r"|(?:מועד|יום|זמן|שעה)\s+אחר(?:ת)?"
    r"|(?:move|reschedule|change|push\s+back|bring\s+forward)\s+(?:the\s+|my\s+|our\s+|this\s+|that\s+)?(?:meeting|appointment)"
    r"|\breschedule\b|(?:another|different|other)\s+(?:day|time))",
    re.IGNORECASE,
)


def cancels_meeting(text: str) -> bool:
    return bool(_CANCELS_MEETING.search(normalize(text)))


def moves_meeting(text: str) -> bool:
    return bool(_MOVES_MEETING.search(normalize(text)))


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
    deal: str | None = None  # "buy" / "rent": said, or (when not known yet) what the amount says
    budget_unclear: float | None = None  # a bare number after the budget question: buy or rent decides

    def any(self) -> bool:
        return any(getattr(self, f) is not None for f in self.__slots__)


_NAME_CUE = re.compile(r"קוראים\s+לי|שמי|השם\s+שלי|תרשמי|על\s+שם|my\s+name|name's|call\s+me", re.IGNORECASE)


def extract(text: str, hebrew: bool, expecting: str | None = None, deal: str | None = None) -> Found:
    """Everything the utterance says about the lead. ``expecting`` is the slot just asked
    about; ``deal`` what is known already ("buy" / "rent"), which decides what a bare
    "שמונה" after the budget question is."""
    text = text[:MAX_CHARS]
    timeframe = timeframe_in(text, hebrew, expecting=expecting == "timeframe")
    rooms = rooms_in(text, expecting=expecting in ("rooms", "property_type"))
    asked_budget = expecting in ("budget", "budget_ils") and timeframe is None and rooms is None
    reading = budget_reading(text, expecting=asked_budget, deal=deal)
    budget = reading.amount
    said_deal = deal_in(text) if expecting == "deal" or reading.deal is None else reading.deal
    if deal is not None and said_deal == deal:
        said_deal = None  # nothing new
    if deal is not None and budget is not None and said_deal is not None and deal_in(text) is None:
        said_deal = None  # the amount alone does not overrule what the caller said before
    area = area_in(text, hebrew)
    prop = property_in(text, hebrew)
    name = None
    if expecting == "name" or _NAME_CUE.search(text) or _NAME_OPENING.search(text) or _NAME_OPENING_GREETED.search(text):
        if not (area or prop or budget or timeframe or rooms) or expecting != "name":
            name = name_in(text, expecting=expecting == "name")
    return Found(area, prop, rooms, budget, timeframe, name, said_deal, reading.unclear)


_SPLITTABLE = set(_NUM_WORDS) | _HALF | _QUARTER | _HUNDRED | {"אני", "אנחנו", "בעצם", "לא"}
