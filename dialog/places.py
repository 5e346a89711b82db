"""Israeli cities and neighbourhoods the brain recognises, in Hebrew and English.

Each row: Hebrew name, English name, the city it belongs to (neighbourhoods), and extra
spellings callers and recognisers produce. Only names that are not everyday words are
listed (no "גילה", "הדר", "ארנונה", "ראשון" alone): a false area is worse than asking.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    he: str
    en: str
    city_he: str | None = None
    city_en: str | None = None
    aliases: tuple[str, ...] = ()

    def label(self, hebrew: bool) -> str:
        if hebrew:
            return f"{self.he}, {self.city_he}" if self.city_he else self.he
        return f"{self.en}, {self.city_en}" if self.city_en else self.en


_CITIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("תל אביב", "Tel Aviv", ('ת"א', "תל אביב יפו", "telaviv", "tel aviv yafo", "tell aviv")),
    ("ירושלים", "Jerusalem", ("ירושלַים",)),
    ("חיפה", "Haifa", ()),
    ("רמת גן", "Ramat Gan", ("ramatgan",)),
    ("גבעתיים", "Givatayim", ("givataim",)),
    ("הרצליה", "Herzliya", ("herzlia", "hertzliya")),
    ("רעננה", "Ra'anana", ("raanana", "ra anana")),
    ("כפר סבא", "Kfar Saba", ("kfar sava",)),
    ("הוד השרון", "Hod Hasharon", ("hod ha sharon",)),
    ("רמת השרון", "Ramat Hasharon", ("ramat ha sharon",)),
    ("פתח תקווה", "Petah Tikva", ("פתח תקוה", "petach tikva", "petah tikvah")),
    ("ראשון לציון", "Rishon LeZion", ("rishon lezion", "rishon le zion", "rishon")),
    ("רחובות", "Rehovot", ()),
    ("נס ציונה", "Ness Ziona", ("nes ziona",)),
    ("מודיעין", "Modiin", ("modi'in", "modiin")),
    ("חולון", "Holon", ()),
    ("בת ים", "Bat Yam", ()),
    ("נתניה", "Netanya", ("natanya",)),
    ("אשדוד", "Ashdod", ()),
    ("אשקלון", "Ashkelon", ()),
    ("באר שבע", "Beersheba", ("beer sheva", "be'er sheva", "beersheva")),
    ("בית שמש", "Beit Shemesh", ("beit shemesh",)),
    ("בני ברק", "Bnei Brak", ()),
    ("יפו", "Jaffa", ("yafo",)),
    ("קריית אונו", "Kiryat Ono", ("קרית אונו",)),
    ("אור יהודה", "Or Yehuda", ()),
    ("ראש העין", "Rosh HaAyin", ("rosh haayin", "rosh ha'ayin")),
    ("חדרה", "Hadera", ()),
    ("זכרון יעקב", "Zichron Yaakov", ("זיכרון יעקב", "zikhron yaakov")),
    ("קיסריה", "Caesarea", ()),
    ("עכו", "Acre", ("akko",)),
    ("נהריה", "Nahariya", ()),
    ("טבריה", "Tiberias", ()),
    ("אילת", "Eilat", ()),
    ("כרמיאל", "Karmiel", ()),
    ("עפולה", "Afula", ()),
    ("נצרת", "Nazareth", ()),
    ("מעלה אדומים", "Ma'ale Adumim", ("maale adumim",)),
    ("גבעת שמואל", "Givat Shmuel", ()),
    ("יבנה", "Yavne", ()),
    ("לוד", "Lod", ()),
    ("רמלה", "Ramla", ()),
    ("שוהם", "Shoham", ()),
    ("אבן יהודה", "Even Yehuda", ()),
    ("קריית ביאליק", "Kiryat Bialik", ("קרית ביאליק",)),
    ("קריית מוצקין", "Kiryat Motzkin", ("קרית מוצקין",)),
]

_NEIGHBOURHOODS: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("פלורנטין", "Florentin", "תל אביב", "Tel Aviv", ("florentine",)),
    ("נווה צדק", "Neve Tzedek", "תל אביב", "Tel Aviv", ("נוה צדק", "neve tsedek")),
    ("הצפון הישן", "the Old North", "תל אביב", "Tel Aviv", ("old north",)),
    ("הצפון החדש", "the New North", "תל אביב", "Tel Aviv", ("new north",)),
    ("רמת אביב", "Ramat Aviv", "תל אביב", "Tel Aviv", ()),
    ("בבלי", "Bavli", "תל אביב", "Tel Aviv", ()),
    ("יד אליהו", "Yad Eliyahu", "תל אביב", "Tel Aviv", ()),
    ("צהלה", "Tzahala", "תל אביב", "Tel Aviv", ()),
    ("רחביה", "Rehavia", "ירושלים", "Jerusalem", ()),
    ("בקעה", "Baka", "ירושלים", "Jerusalem", ()),
    ("קטמון", "Katamon", "ירושלים", "Jerusalem", ()),
    ("המושבה הגרמנית", "the German Colony", "ירושלים", "Jerusalem", ("german colony",)),
    ("תלפיות", "Talpiot", "ירושלים", "Jerusalem", ()),
    ("בית הכרם", "Beit HaKerem", "ירושלים", "Jerusalem", ("beit hakerem", "beit ha kerem")),
    ("נחלאות", "Nachlaot", "ירושלים", "Jerusalem", ()),
    ("הכרמל", "the Carmel", "חיפה", "Haifa", ("כרמל", "carmel")),
    ("נווה שאנן", "Neve Sha'anan", "חיפה", "Haifa", ("neve shaanan",)),
    ("הרצליה פיתוח", "Herzliya Pituach", "הרצליה", "Herzliya", ("herzliya pituah",)),
]

PLACES: list[Place] = [Place(he, en, aliases=al) for he, en, al in _CITIES] + [
    Place(he, en, chs, che, al) for he, en, chs, che, al in _NEIGHBOURHOODS
]
