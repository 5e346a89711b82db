from __future__ import annotations

import pytest

from dialog import extract


@pytest.mark.parametrize("text, expecting, amount", [
    ("מיליון וחצי", False, 1_500_000),
    ("2.5 מיליון", False, 2_500_000),
    ("שניים וחצי מיליון", False, 2_500_000),
    ("בערך 800 אלף שקל", False, 800_000),
    ("שמונה מאות אלף", False, 800_000),
    ("מיליון ושמונה מאות אלף", False, 1_800_000),
    ("מיליון ושש מאות", False, 1_600_000),
    ("עד 3 מליון", False, 3_000_000),
    ("₪2,000,000", False, 2_000_000),
    ("two million shekels", False, 2_000_000),
    ("a million and a half", False, 1_500_000),
    ("two and a half million", False, 2_500_000),
    ("about 1.5 million", False, 1_500_000),
    ("800k", False, 800_000),
    ("מיליון... לא, בעצם שני מיליון", False, 2_000_000),
    ("שתיים וחצי", True, 2_500_000),
    ("900", True, 900_000),
    ("שתיים וחצי", False, None),
    ("4 חדרים", False, None),
    ("תחזרו אליי ל-052-7654321", False, None),
    ("my number is 0541112222", True, None),
    ("one point eight million", False, 1_800_000),  # not "eight million"
    ("two point five million", False, 2_500_000),
    ("שתיים נקודה חמש מיליון", False, 2_500_000),
    ("4.1 million", False, 4_100_000),  # not 4,099,999
    ("thirteen million", False, 13_000_000),
    ("the point is two million", False, 2_000_000),
])
def test_budget(text, expecting, amount):
    assert extract.budget_in(text, expecting=expecting) == amount


@pytest.mark.parametrize("text, rooms", [
    ("4 חדרים", 4), ("דירת 3 חדרים", 3), ("ארבעה וחצי חדרים", 4.5), ("חדר אחד", 1), ("four rooms", 4),
    ("3 bedrooms", 4), ("three and a half rooms", 3.5), ("Free room and apartment.", 3), ("מיליון וחצי", None), ("בעוד 3 חודשים", None),
])
def test_rooms(text, rooms):
    assert extract.rooms_in(text) == rooms


@pytest.mark.parametrize("text, he, en", [
    ("אני מחפש דירה בתל אביב", "תל אביב", "Tel Aviv"),
    ("בתל-אביב", "תל אביב", "Tel Aviv"),
    ("בעצם לא בחולון, עדיף בבת ים", "בת ים", "Bat Yam"),
    ("בפלורנטין", "פלורנטין, תל אביב", "Florentin, Tel Aviv"),
    ("looking in herzliya pituach", "הרצליה פיתוח, הרצליה", "Herzliya Pituach, Herzliya"),
    ("בהרצליה", "הרצליה", "Herzliya"),
    ("a house in Ra'anana", "רעננה", "Ra'anana"),
    ("בית בבית שמש", "בית שמש", "Beit Shemesh"),
    ("ביום ראשון בעשר", None, None),
    ("אני גר ליד הים", None, None),
])
def test_area(text, he, en):
    assert extract.area_in(text, True) == he
    assert extract.area_in(text, False) == en


@pytest.mark.parametrize("text, he", [
    ("דירה", "דירה"), ("דירת גן", "דירת גן"), ("פנטהאוס", "פנטהאוז"), ("בית פרטי", "בית פרטי"),
    ("קוטג'", "קוטג'"), ("בית שמש", None), ("a garden apartment", "דירת גן"), ("villa", "וילה"),
])
def test_property(text, he):
    assert extract.property_in(text, True) == he


@pytest.mark.parametrize("text, he, en", [
    ("תוך שלושה חודשים", "תוך 3 חודשים", "within 3 months"),
    ("בחודשיים הקרובים", "תוך חודשיים", "within 2 months"),
    ("within 6 months", "תוך חצי שנה", "within six months"),
    ("בשנה הקרובה", "תוך שנה", "within a year"),
    ("next year", "תוך שנה", "within a year"),
    ("asap", "מיידי", "as soon as possible"),
    ("כמה שיותר מהר", "מיידי", "as soon as possible"),
    ("אין לחץ", "גמיש", "flexible"),
    ("in a few months", "תוך כמה חודשים", "within a few months"),
    ("4 חדרים", None, None),
])
def test_timeframe(text, he, en):
    assert extract.timeframe_in(text, True) == he
    assert extract.timeframe_in(text, False) == en


@pytest.mark.parametrize("text, expecting, name", [
    ("קוראים לי דנה כהן", False, "דנה כהן"), ("שמי רון", False, "רון"), ("my name is dana", False, "Dana"),
    ("Dana", True, "Dana"), ("Dana", False, None), ("אני דנה", True, "דנה"), ("אני מחפש דירה", True, None),
    ("I'm looking for a flat", True, None), ("it's Tom", True, "Tom"),
    ("wait, actually I am, my name is Tom", False, "Tom"), ("אני פה, קוראים לי דנה", False, "דנה"),
])
def test_name(text, expecting, name):
    assert extract.name_in(text, expecting=expecting) == name


@pytest.mark.parametrize("text, phone", [
    ("050-123-4567", "+972501234567"),
    ("אפס חמש אפס אחת שתיים שלוש ארבע חמש שש שבע", "+972501234567"),
    ("+972 52 765 4321", "+972527654321"),
    ("call me on 054 111 2222", "+972541112222"),
    ("03-6123456", "+97236123456"),
    ("12345", None),
])
def test_phone(text, phone):
    assert extract.phone_in(text) == phone


@pytest.mark.parametrize("text, answer", [
    ("כן, נכון", True), ("לא, זה מספר אחר", False), ("yeah sure", True), ("nope", False), ("מה?", None),
])
def test_yes_no(text, answer):
    assert extract.yes_no(text) is answer


def test_intents():
    assert extract.not_interested("לא מעוניינת, תודה") and extract.not_interested("I'm not interested")
    assert extract.asks_listings("אילו דירות יש לכם?") and extract.asks_listings("what apartments do you have")
    assert not extract.asks_listings("דירה בתל אביב")
    assert extract.refuses("אני מעדיף לא להגיד") and extract.refuses("I'd rather not say")
    assert extract.only_holds_floor("רגע") and extract.only_holds_floor("wait...") and not extract.only_holds_floor("רגע, בחיפה")


@pytest.mark.parametrize("toks, value", [
    (["שניים", "ו", "חצי"], 2.5), (["eight", "hundred"], 800), (["עשרים", "ו", "שלושה"], 23),
    (["two", "and", "a", "half"], 2.5), (["חצי", "שלושה"], None), (["2", "3"], None), (["three", "two"], None),
])
def test_words_value_reads_one_number_only(toks, value):
    assert extract.words_value(toks) == value


@pytest.mark.parametrize("text, budget, rooms", [
    ("מיליון וחצי 900k", 900_000, None),  # two amounts: the last one said
    ("מיליון וחצי three bedrooms", 1_500_000, 4),
    ("קוראים לי דנה 052-7654321 052-7654321", None, None),
])
def test_adjacent_numbers_do_not_merge(text, budget, rooms):
    assert extract.budget_in(text) == budget
    assert extract.rooms_in(text) == rooms


@pytest.mark.parametrize("text, deal, amount, said, unclear", [
    ("שמונה", None, None, None, 8),  # 8 million or 8,000 a month: the dialog asks
    ("שמונה", "rent", 8000, None, None),
    ("שמונה", "buy", 8_000_000, None, None),
    ("עד שמונה אלף לחודש", None, 8000, "rent", None),
    ("מיליון שמונה", None, 1_800_000, "buy", None),
    ("5000", None, 5000, "rent", None),
    ("שתיים וחצי", None, 2_500_000, "buy", None),
])
def test_budget_reading_after_the_budget_question(text, deal, amount, said, unclear):
    reading = extract.budget_reading(text, expecting=True, deal=deal)
    assert (reading.amount, reading.unclear) == (amount, unclear)
    if deal is None:
        assert reading.deal == said


@pytest.mark.parametrize("text, deal", [
    ("לשכור, לא לקנות", "rent"), ("זה לשכירות, לא לקנייה", "rent"), ("אני שוכר כרגע ורוצה לקנות", "buy"),
    ("6000 שקל בחודש", "rent"), ("בחודש הבא", None), ("תוך חודשיים", None), ("renting, not buying", "rent"),
    ("8,000 a month", "rent"), ("within a month", None), ("יש לנו אישור עקרוני למשכנתא", "buy"),
])
def test_deal(text, deal):
    assert extract.deal_in(text) == deal


def test_tokens_split_prefixes_off_amounts_only():
    assert extract.tokens("לא יותר משלושה מיליון") == ["לא", "יותר", "מ", "שלושה", "מיליון"]
    assert extract.tokens("בסביבות המיליון") == ["בסביבות", "ה", "מיליון"]
    assert extract.tokens("ששת אלפים ושש") == ["ששת", "אלפים", "ו", "שש"]
    assert extract.tokens("בשמונה") == ["ב", "שמונה"]
    assert extract.tokens("שמונה שבע שלוש משהו") == ["שמונה", "שבע", "שלוש", "משהו"]


def test_words_value_teens_and_digits_with_a_half():
    assert extract.words_value(["חמש", "עשרה"]) == 15
    assert extract.words_value(["3", "ו", "חצי"]) == 3.5
    assert extract.words_value(["3", "4"]) is None
