"""Phrase hints for the recognizers: Israeli place names and real-estate words callers say."""
from __future__ import annotations

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


def hints_for(language: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    base = language.split("-")[0].lower()
    return (HINTS_HE if base in ("he", "iw") else HINTS_EN) + tuple(extra)
