"""Scripted calls for the offline brain: Hebrew and English, clean and messy.

Each conversation lists the caller's turns; a turn can be mumbled (low ASR confidence),
empty, or a barge-in (``cut``: the caller interrupted the previous agent turn, which was
heard only up to its middle). The expected end state: slots, lead status, meeting slot.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from dialog.schedule import TZ

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=TZ)  # Wednesday afternoon
CALLER = "+972501234567"
THU_10 = (3, 10)  # Python weekday, hour
FRI_9 = (4, 9)
SUN_10 = (6, 10)
THU_13 = (3, 13)


@dataclass(frozen=True)
class T:
    text: str
    confidence: float = 0.92
    cut: bool = False  # barged in on the previous agent turn


@dataclass(frozen=True)
class Conv:
    name: str
    lang: str
    turns: list
    slots: dict = field(default_factory=dict)
    status: str = "meeting_booked"
    meeting: tuple[int, int] | None = None
    finished: bool = True
    phone: str = CALLER
    now: dt.datetime = NOW
    said: tuple[str, ...] = ()  # phrases some agent turn must contain
    never_said: tuple[str, ...] = ()


def t(*texts: str) -> list[T]:
    return [T(x) for x in texts]


HE_TAIL = ["קוראים לי דנה", "כן, נכון", "מחר בעשר", "כן", "לא, תודה"]

CORPUS: list[Conv] = [
    # ---------------------------------------------------------------- Hebrew
    Conv("he_clean", "he-IL",
         t("שלום, אני מחפש דירה בתל אביב", "4 חדרים", "בסביבות שני מיליון שקל", "תוך שלושה חודשים", *HE_TAIL),
         dict(area="תל אביב", property_type="דירה", rooms=4, budget_ils=2_000_000, timeframe="תוך 3 חודשים",
              name="דנה", phone=CALLER, phone_confirmed=True), meeting=THU_10,
         said=("מחר בעשר או ביום שישי בתשע?", "וואטסאפ")),
    Conv("he_all_in_one", "he-IL",
         t("היי, אני מחפשת דירת 4 חדרים ברמת גן עד 2 מיליון, תוך חצי שנה", "שמי מיכל לוי", "כן", "ביום שישי",
           "כן, מעולה", "זהו, תודה"),
         dict(area="רמת גן", property_type="דירה", rooms=4, budget_ils=2_000_000, timeframe="תוך חצי שנה",
              name="מיכל לוי", phone_confirmed=True), meeting=FRI_9),
    Conv("he_mumbling", "he-IL",
         [T("אממ... ה...", 0.3), T("", 0.0), T("דירה בחיפה", 0.88), T("שלו... חד...", 0.25), T("שלושה חדרים"),
          T("מיליון", 0.81), T("כמה שיותר מהר"), T("רון", 0.4), T("קוראים לי רון"), T("כן"), T("הראשון"), T("כן"),
          T("לא")],
         dict(area="חיפה", rooms=3, budget_ils=1_000_000, timeframe="מיידי", name="רון"), meeting=THU_10,
         said=("לא בטוח ששמעתי נכון, אפשר לחזור על זה?",)),
    Conv("he_interruption", "he-IL",
         [T("אני מחפש דירה"), T("רגע", cut=True), T("בעצם אני מחפש בפתח תקווה"), T("חמישה חדרים"),
          T("מיליון ושמונה מאות אלף"), T("סליחה", cut=True), T("תוך שנה"), *t(*HE_TAIL)],
         dict(area="פתח תקווה", rooms=5, budget_ils=1_800_000, timeframe="תוך שנה"), meeting=THU_10,
         said=("אני מקשיבה. מה רצית להגיד?",)),
    Conv("he_change_area", "he-IL",
         t("דירה בתל אביב", "3 חדרים", "בעצם לא תל אביב, עדיף בגבעתיים", "2 מיליון", "תוך חודשיים", *HE_TAIL),
         dict(area="גבעתיים", rooms=3, budget_ils=2_000_000, timeframe="תוך חודשיים"), meeting=THU_10),
    Conv("he_change_budget", "he-IL",
         t("אני מחפש דופלקס בהרצליה", "5 חדרים", "מיליון וחצי", "רגע, בעצם עד 2.5 מיליון", "תוך חודש", *HE_TAIL),
         dict(area="הרצליה", property_type="דופלקס", budget_ils=2_500_000, timeframe="תוך חודש"), meeting=THU_10),
    Conv("he_refuses_budget", "he-IL",
         t("בית פרטי ברעננה", "6 חדרים", "לא רוצה להגיד כרגע", "אין לחץ", *HE_TAIL),
         dict(area="רעננה", property_type="בית פרטי", rooms=6, budget_ils=None, timeframe="גמיש"), meeting=THU_10,
         said=("נדבר על זה בפגישה",)),
    Conv("he_asks_apartments", "he-IL",
         t("אילו דירות יש לכם בפלורנטין?", "דירה, 2 חדרים", "מה המחיר של דירה כזאת?", "מיליון ושלוש מאות אלף",
           "תוך כמה חודשים", *HE_TAIL),
         dict(area="פלורנטין, תל אביב", rooms=2, budget_ils=1_300_000, timeframe="תוך כמה חודשים"), meeting=THU_10,
         said=("נציג בפגישה",)),
    Conv("he_not_interested", "he-IL", t("שלום", "לא מעוניין, תודה"), dict(area=None), status="lost",
         said=("תודה על הזמן",)),
    Conv("he_different_phone", "he-IL",
         t("דירה בחולון", "4 חדרים", "מיליון ושש מאות", "תוך שנה", "אבי", "לא, תחזרו אליי ל-052-7654321", "מחר", "כן",
           "זה הכל"),
         dict(area="חולון", budget_ils=1_600_000, name="אבי", phone="+972527654321", phone_confirmed=True),
         meeting=THU_10),
    Conv("he_no_caller_id", "he-IL",
         t("דירה בבת ים", "3 חדרים", "מיליון", "תוך חודשיים", "יעל", "אפס חמש ארבע שלוש שתיים אחת אפס תשע שמונה שבע",
           "ביום שישי בתשע", "כן", "לא תודה"),
         dict(area="בת ים", name="יעל", phone="+972543210987", phone_confirmed=True), meeting=FRI_9, phone=""),
    Conv("he_rejects_windows", "he-IL",
         t("דירה במודיעין", "5 חדרים", "2 מיליון", "תוך חצי שנה", "גלית", "נכון", "אף אחד לא מתאים לי", "ביום ראשון",
           "כן", "תודה, להתראות"),
         dict(area="מודיעין", name="גלית"), meeting=SUN_10, said=("אין בעיה. אולי",)),
    Conv("he_changes_window_at_confirm", "he-IL",
         t("דירה בנתניה", "4 חדרים", "מיליון ושבע מאות", "תוך חודשיים", "שרון", "כן", "מחר בעשר",
           "לא, עדיף ביום שישי", "כן", "לא"),
         dict(area="נתניה", budget_ils=1_700_000), meeting=FRI_9),
    Conv("he_penthouse_neighbourhood", "he-IL",
         t("פנטהאוז בנווה צדק", "5 חדרים", "שלושה מיליון", "אין לחץ", "קוראים לי אורי כהן", "בדיוק", "השני", "כן",
           "לא, זה הכל"),
         dict(area="נווה צדק, תל אביב", property_type="פנטהאוז", rooms=5, budget_ils=3_000_000, timeframe="גמיש",
              name="אורי כהן"), meeting=FRI_9),
    Conv("he_garden_words", "he-IL",
         t("דירת גן, ארבעה וחצי חדרים, בכפר סבא", "שניים וחצי מיליון", "בחודשיים הקרובים", *HE_TAIL),
         dict(area="כפר סבא", property_type="דירת גן", rooms=4.5, budget_ils=2_500_000, timeframe="תוך חודשיים"),
         meeting=THU_10),
    Conv("he_bare_budget_answer", "he-IL",
         t("קוטג' בשוהם", "6 חדרים", "שתיים וחצי", "תוך שנה", *HE_TAIL),
         dict(area="שוהם", property_type="קוטג'", budget_ils=2_500_000), meeting=THU_10),
    Conv("he_thousands", "he-IL",
         t("דירה בבאר שבע", "3 חדרים", "בערך 900 אלף", "תוך חודש", *HE_TAIL),
         dict(area="באר שבע", budget_ils=900_000, timeframe="תוך חודש"), meeting=THU_10),
    Conv("he_dropped_midway", "he-IL", t("דירה בירושלים", "3 חדרים"),
         dict(area="ירושלים", rooms=3, budget_ils=None), status="new", finished=False),
    Conv("he_unknown_timeframe_skipped", "he-IL",
         t("דירה בחדרה", "4 חדרים", "מיליון ומאתיים", "לא יודע", "אין לי מושג", "באמת לא יודע", *HE_TAIL),
         dict(area="חדרה", budget_ils=1_200_000, timeframe=None), meeting=THU_10,
         said=("גם הערכה כללית זה בסדר.",)),
    Conv("he_holiday_eve", "he-IL",
         t("דירה ברחובות", "3 חדרים", "מיליון וחצי", "תוך שנה", "קוראים לי נועם", "כן", "השני", "כן", "לא"),
         dict(area="רחובות", budget_ils=1_500_000), meeting=(0, 13),  # Monday 14.9: Rosh Hashanah is Sat–Sun
         now=dt.datetime(2026, 9, 10, 20, 0, tzinfo=TZ)),
    Conv("he_pesach", "he-IL",
         t("דירה באשדוד", "4 חדרים", "מיליון ושלוש מאות", "תוך חודשיים", "קוראים לי תמר", "כן", "הראשון", "כן", "לא"),
         dict(area="אשדוד"), meeting=(2, 9),  # Wed 1.4 is Pesach eve: mornings only; Thu 2.4 is Pesach
         now=dt.datetime(2026, 3, 31, 17, 0, tzinfo=TZ)),
    # ---------------------------------------------------------------- English
    Conv("en_clean", "en-US",
         t("Hi, I'm looking for an apartment in Tel Aviv", "four rooms", "about two million shekels",
           "within three months", "my name is David", "yes", "tomorrow at ten", "yes", "no, that's all"),
         dict(area="Tel Aviv", property_type="apartment", rooms=4, budget_ils=2_000_000, timeframe="within 3 months",
              name="David", phone_confirmed=True), meeting=THU_10,
         said=("tomorrow at 10 am or Friday at 9 am?",)),
    Conv("en_all_in_one", "en-US",
         t("We want a three bedroom house in Ra'anana, budget 3.5 million, within a year", "Sarah", "correct",
           "Friday works", "yes please", "thanks, bye"),
         dict(area="Ra'anana", property_type="house", rooms=4, budget_ils=3_500_000, timeframe="within a year",
              name="Sarah"), meeting=FRI_9),
    Conv("en_mumbling", "en-US",
         [T("uh... the...", 0.2), T("an apartment in Haifa"), T("", 0.0), T("three rooms"), T("one point", 0.3),
          T("1.2 million"), T("asap"), T("it's Tom"), T("yes"), T("the first one"), T("yes"), T("no")],
         dict(area="Haifa", rooms=3, budget_ils=1_200_000, timeframe="as soon as possible", name="Tom"),
         meeting=THU_10, said=("I'm not sure I heard that right, could you say it again?",)),
    Conv("en_interruption", "en-US",
         [T("I'm looking for a flat"), T("wait", cut=True), T("in Jerusalem, in Rehavia"), T("three rooms"),
          T("two million"), T("hold on", cut=True), T("in six months"), T("Dana"), T("yes"), T("tomorrow"), T("yes"),
          T("no thanks")],
         dict(area="Rehavia, Jerusalem", rooms=3, budget_ils=2_000_000, timeframe="within six months", name="Dana"),
         meeting=THU_10, said=("Sorry, go ahead. What were you saying?",)),
    Conv("en_interrupt_with_content", "en-US",
         [T("an apartment please"), T("Netanya, four rooms", cut=True), T("1.8 million"), T("next year"), T("Eli"),
          T("yes"), T("the second one"), T("yes"), T("bye")],
         dict(area="Netanya", rooms=4, budget_ils=1_800_000, timeframe="within a year"), meeting=FRI_9,
         never_said=("What were you saying?",)),
    Conv("en_change_mind", "en-US",
         t("an apartment in Holon", "3 rooms", "actually, make that Bat Yam", "actually four rooms", "1.6 million",
           "within two months", "Rachel", "yes", "tomorrow", "yes", "that's all"),
         dict(area="Bat Yam", rooms=4, budget_ils=1_600_000, timeframe="within 2 months"), meeting=THU_10),
    Conv("en_refuses_budget", "en-US",
         t("a villa in Caesarea", "seven rooms", "I'd rather not say", "no rush", "Mike", "yes", "Friday", "yes", "no"),
         dict(area="Caesarea", property_type="villa", rooms=7, budget_ils=None, timeframe="flexible"), meeting=FRI_9,
         said=("we can cover that at the meeting",)),
    Conv("en_asks_apartments", "en-US",
         t("what apartments do you have in Haifa?", "show me what's available", "an apartment, 3 rooms", "900k",
           "in a few months", "Noa", "yes", "the first", "yes", "what do you have for me?", "no, bye"),
         dict(area="Haifa", rooms=3, budget_ils=900_000, timeframe="within a few months"), meeting=THU_10,
         said=("Our agent will show matching properties at the meeting.",)),
    Conv("en_not_interested", "en-US", t("a flat in Eilat", "sorry, I'm not interested anymore"),
         dict(area="Eilat"), status="lost"),
    Conv("en_different_phone", "en-US",
         t("a penthouse in Herzliya Pituach", "five rooms", "six million", "within a year", "Jonathan",
           "no, call me on 054 111 2222", "tomorrow at 10", "yes", "no"),
         dict(area="Herzliya Pituach, Herzliya", property_type="penthouse", budget_ils=6_000_000,
              phone="+972541112222", phone_confirmed=True), meeting=THU_10),
    Conv("en_rejects_windows", "en-US",
         t("an apartment in Modiin", "4 rooms", "two and a half million", "within six months", "Lior", "yes",
           "neither works for me", "the first one", "yes", "no"),
         dict(area="Modiin", budget_ils=2_500_000), meeting=THU_13, said=("No problem. How about",)),
    Conv("en_dropped_after_offer", "en-US",
         t("a studio in Tel Aviv", "1.1 million", "asap", "Ben", "yes"),
         dict(area="Tel Aviv", property_type="studio", budget_ils=1_100_000), status="qualified", finished=False),
    Conv("en_million_and_a_half", "en-US",
         t("a garden apartment in Kfar Saba", "five rooms", "a million and a half", "in three months", "my name is Anna",
           "that's right", "Friday at 9", "sure", "thank you"),
         dict(area="Kfar Saba", property_type="garden apartment", rooms=5, budget_ils=1_500_000), meeting=FRI_9),
    # The `make demo` caller (server/demo.py), as Whisper tiny.en writes it: one barge-in with content.
    Conv("en_make_demo", "en-US",
         [T("I am looking for something in Tel Aviv."), T("An apartment with three rooms."),
          T("Sorry, my budget is about two million shekels.", cut=True), T("We want to move within three months."),
          T("My name is David Cohen."), T("Yes, that is the right number."), T("The first time works for me."),
          T("Yes, please book it."), T("No, that is all. Thank you.")],
         dict(area="Tel Aviv", property_type="apartment", rooms=3, budget_ils=2_000_000, timeframe="within 3 months",
              name="David Cohen", phone_confirmed=True), meeting=THU_10,
         said=("Nice to meet you, David.", "Thank you, David!")),
    Conv("he_rooms_before_type", "he-IL",
         t("משהו עם 4 חדרים בגבעת שמואל", "דירה", "2 מיליון", "תוך שנה", *HE_TAIL),
         dict(area="גבעת שמואל", property_type="דירה", rooms=4), meeting=THU_10,
         said=("איזה סוג נכס, דירה או בית פרטי?",)),
    Conv("he_busy_call_back", "he-IL", t("דירה בעכו", "סליחה, אין לי זמן עכשיו, תתקשרו אחר כך"),
         dict(area="עכו"), status="new", said=("נחזור אליך בקרוב",)),
    Conv("en_busy_call_back", "en-US", t("a house in Nahariya", "sorry, bad time, call me later"),
         dict(area="Nahariya", property_type="house"), status="new", said=("we'll be in touch soon",)),
    # ---------------------------------------------------------------- Hebrew as people say it
    # (colloquial numbers, glued prefixes, rent or buy, the many ways to say yes and no)
    Conv("he_million_eight_after_the_holidays", "he-IL",
         t("דירה בחולון", "שלוש וחצי חדרים", "מיליון שמונה", "אחרי החגים", "קוראים לי יוסי", "בטח", "מחר בעשר",
           "סגור", "לא, תודה"),
         dict(area="חולון", property_type="דירה", rooms=3.5, budget_ils=1_800_000, deal="buy",
              timeframe="אחרי החגים", name="יוסי", phone_confirmed=True), meeting=THU_10,
         said=("עד 1.8 מיליון", "דירת 3.5 חדרים")),  # written form; the voice says "מיליון שמונה מאות אלף"
    Conv("he_rent_or_buy_asked", "he-IL",
         t("מחפשת דירה בגבעתיים", "3 חדרים", "שמונה", "לשכירות", "תוך חודשיים", "שמי רונית לוי", "סבבה",
           "ביום שישי", "יאללה", "עזבי, זה הכל"),
         dict(area="גבעתיים", property_type="דירה", rooms=3, budget_ils=8000, deal="rent", timeframe="תוך חודשיים",
              name="רונית לוי", phone_confirmed=True), meeting=FRI_9,
         said=("לקנייה או לשכירות?", "עד 8 אלף שקל לחודש"), never_said=("8 מיליון",)),
    Conv("he_buy_after_the_question", "he-IL",
         t("בית פרטי ברעננה", "6 חדרים", "בסביבות שמונה", "לקנות", "עד סוף השנה", *HE_TAIL),
         dict(area="רעננה", property_type="בית פרטי", rooms=6, budget_ils=8_000_000, deal="buy",
              timeframe="עד סוף השנה"), meeting=THU_10, said=("לקנייה או לשכירות?",)),
    Conv("he_renter_says_it_first", "he-IL",
         t("מחפש לשכור יחידת דיור בתל אביב", "חדר וחצי", "עד ארבעת אלפים לחודש", "מיד", "קוראים לי עומר", "בטח",
           "הראשון", "אחלה", "לא ממש"),
         dict(area="תל אביב", property_type="יחידת דיור", rooms=1.5, budget_ils=4000, deal="rent",
              timeframe="מיידי", name="עומר"), meeting=THU_10,
         said=("מה התקציב לחודש, בערך?",), never_said=("לקנייה או לשכירות?",)),
    Conv("he_greeting_name_glued_places", "he-IL",
         t("היי, זה אבי, אני מחפש פנטהאוז בר\"ג", "חמישה חדרים", "בסביבות שלושה מיליון", "עד סוף השנה", "כן נכון",
           "השני", "סגור", "לא"),
         dict(area="רמת גן", property_type="פנטהאוז", rooms=5, budget_ils=3_000_000, timeframe="עד סוף השנה",
              name="אבי", phone_confirmed=True), meeting=FRI_9, said=("נעים מאוד, אבי.",)),
    Conv("he_landmark_range_half_million", "he-IL",
         t("ליד הים בבת ים", "דירת גן", "ארבע-חמש חדרים", "שתיים וחצי מיליון", "תוך חודשיים", *HE_TAIL),
         dict(area="בת ים", property_type="דירת גן", rooms=4, budget_ils=2_500_000, timeframe="תוך חודשיים"),
         meeting=THU_10),
    Conv("he_bare_answers_after_each_question", "he-IL",
         t("קוטג' בשוהם", "שש", "שלוש וחצי", "בקיץ", "זה מיכל", "יאללה", "מחר", "בדיוק", "זהו, תודה"),
         dict(area="שוהם", property_type="קוטג'", rooms=6, budget_ils=3_500_000, timeframe="בקיץ", name="מיכל",
              phone_confirmed=True), meeting=THU_10),
    Conv("he_not_really_then_the_other_window", "he-IL",
         t("דירה בפתח תקווה", "4 חדרים", "מיליון ומאתיים", "תוך חצי שנה", "שמי דנה", "נכון", "לא ממש",
           "ביום ראשון", "יאללה", "לא תודה"),
         dict(area="פתח תקווה", budget_ils=1_200_000, timeframe="תוך חצי שנה", name="דנה"), meeting=SUN_10,
         said=("אין בעיה. אולי",)),
    Conv("he_digits_and_words_mixed", "he-IL",
         t("דירה בראשון לציון", "3 וחצי", "מיליון 800 אלף", "תוך 3 חודשים", "קוראים לי מאיר", "בטח שלא",
           "052-7654321", "מחר", "כן", "לא"),
         dict(area="ראשון לציון", rooms=3.5, budget_ils=1_800_000, timeframe="תוך 3 חודשים", name="מאיר",
              phone="+972527654321", phone_confirmed=True), meeting=THU_10),
    Conv("he_rent_office_per_month", "he-IL",
         t("משרד להשכרה בהרצליה פיתוח", "12 אלף לחודש", "אחרי פסח", *HE_TAIL),
         dict(area="הרצליה פיתוח, הרצליה", property_type="משרד", budget_ils=12_000, deal="rent",
              timeframe="אחרי פסח"), meeting=THU_10, said=("עד 12 אלף שקל לחודש",)),
]
