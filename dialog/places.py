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
    ("רמת גן", "Ramat Gan", ('ר"ג', "ramatgan")),
    ("גבעתיים", "Givatayim", ("givataim",)),
    ("הרצליה", "Herzliya", ("herzlia", "hertzliya")),
    ("רעננה", "Ra'anana", ("raanana", "ra anana")),
    ("כפר סבא", "Kfar Saba", ("kfar sava",)),
    ("הוד השרון", "Hod Hasharon", ("hod ha sharon",)),
    ("רמת השרון", "Ramat Hasharon", ("ramat ha sharon",)),
    ("פתח תקווה", "Petah Tikva", ("פתח תקוה", 'פ"ת', "petach tikva", "petah tikvah")),
    ("ראשון לציון", "Rishon LeZion", ('ראשל"צ', "rishon lezion", "rishon le zion", "rishon")),
    ("רחובות", "Rehovot", ()),
    ("נס ציונה", "Ness Ziona", ("nes ziona",)),
    ("מודיעין", "Modiin", ("modi'in", "modiin")),
    ("חולון", "Holon", ()),
    ("בת ים", "Bat Yam", ()),
    ("נתניה", "Netanya", ("natanya",)),
    ("אשדוד", "Ashdod", ()),
    ("אשקלון", "Ashkelon", ()),
    ("באר שבע", "Beersheba", ('ב"ש', "beer sheva", "be'er sheva", "beersheva")),
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
    ("נהריה", "Nahariya", ("נהרייה",)),
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
    ("יהוד", "Yehud", ("יהוד מונוסון",)),
    ("כפר יונה", "Kfar Yona", ()),
    ("פרדס חנה כרכור", "Pardes Hanna-Karkur", ("פרדס חנה", "כרכור", "pardes hanna", "pardes hana")),
    ("קריית גת", "Kiryat Gat", ("קרית גת",)),
    ("קריית שמונה", "Kiryat Shmona", ("קרית שמונה",)),
    ("קריית אתא", "Kiryat Ata", ("קרית אתא",)),
    ("קריית ים", "Kiryat Yam", ("קרית ים",)),
    ("טירת כרמל", "Tirat Carmel", ()),
    ("נשר", "Nesher", ()),
    ("יקנעם", "Yokneam", ("יוקנעם",)),
    ("צפת", "Safed", ("tzfat",)),
    ("דימונה", "Dimona", ()),
    ("אור עקיבא", "Or Akiva", ()),
    ("גני תקווה", "Ganei Tikva", ("גני תקוה",)),
    ("אלעד", "Elad", ()),
    ("קדימה צורן", "Kadima-Tzoran", ()),
    ("בית שאן", "Beit She'an", ()),
    ("גדרה", "Gedera", ()),
    ("מזכרת בתיה", "Mazkeret Batya", ()),
    ("נתיבות", "Netivot", ()),
    ("שדרות", "Sderot", ()),
    ("אופקים", "Ofakim", ()),
    ("עראבה", "Arraba", ()),
    ("כפר קאסם", "Kafr Qasim", ()),
    ("טייבה", "Tayibe", ()),
]

# Regions callers name instead of a city (label without a city).
_REGIONS: list[tuple[str, str, tuple[str, ...]]] = [
    ("גוש דן", "Gush Dan", ()),
    ("השרון", "the Sharon", ("אזור השרון", "sharon area")),
    ("השפלה", "the Shfela", ()),
    ("מרכז הארץ", "central Israel", ("אזור המרכז", "center of the country", "central israel")),
    ("צפון תל אביב", "North Tel Aviv", ("north tel aviv", "northern tel aviv")),
    ("דרום תל אביב", "South Tel Aviv", ("south tel aviv", "southern tel aviv")),
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
    ("הדר יוסף", "Hadar Yosef", "תל אביב", "Tel Aviv", ()),
    ("נווה אביבים", "Neve Avivim", "תל אביב", "Tel Aviv", ("נוה אביבים",)),
    ("רמת החייל", "Ramat HaHayal", "תל אביב", "Tel Aviv", ("ramat hahayal", "ramat hachayal")),
    ("כרם התימנים", "Kerem HaTeimanim", "תל אביב", "Tel Aviv", ()),
    ("לב העיר", "Lev HaIr", "תל אביב", "Tel Aviv", ()),
    ("כוכב הצפון", "Kokhav HaTsafon", "תל אביב", "Tel Aviv", ()),
    ("נווה שרת", "Neve Sharet", "תל אביב", "Tel Aviv", ("נוה שרת",)),
    ("תל ברוך", "Tel Baruch", "תל אביב", "Tel Aviv", ()),
    ("עג'מי", "Ajami", "יפו", "Jaffa", ("עגמי",)),
    ("גבעת שאול", "Givat Shaul", "ירושלים", "Jerusalem", ()),
    ("הר נוף", "Har Nof", "ירושלים", "Jerusalem", ()),
    ("עין כרם", "Ein Karem", "ירושלים", "Jerusalem", ()),
    ("פסגת זאב", "Pisgat Ze'ev", "ירושלים", "Jerusalem", ()),
    ("בית וגן", "Bayit VeGan", "ירושלים", "Jerusalem", ()),
    ("קריית יובל", "Kiryat Yovel", "ירושלים", "Jerusalem", ("קרית יובל",)),
    ("רמת שרת", "Ramat Sharet", "ירושלים", "Jerusalem", ()),
    ("בת גלים", "Bat Galim", "חיפה", "Haifa", ()),
    ("רמות רמז", "Ramot Remez", "חיפה", "Haifa", ()),
    ("בורוכוב", "Borochov", "גבעתיים", "Givatayim", ()),
    ("רמת חן", "Ramat Hen", "רמת גן", "Ramat Gan", ()),
    ("תל בנימין", "Tel Binyamin", "רמת גן", "Ramat Gan", ()),
    ("נחלת גנים", "Nahalat Ganim", "רמת גן", "Ramat Gan", ()),
    ("קריית שרת", "Kiryat Sharet", "חולון", "Holon", ("קרית שרת",)),
    ("רמת הנשיא", "Ramat HaNasi", "בת ים", "Bat Yam", ()),
    ("כפר גנים", "Kfar Ganim", "פתח תקווה", "Petah Tikva", ()),
    ("עיר ימים", "Ir Yamim", "נתניה", "Netanya", ()),
    ("רמת פולג", "Ramat Poleg", "נתניה", "Netanya", ("פולג",)),
    ("נחלת יהודה", "Nahalat Yehuda", "ראשון לציון", "Rishon LeZion", ()),
    ("נווה זאב", "Neve Ze'ev", "באר שבע", "Beersheba", ("נוה זאב",)),
]

PLACES: list[Place] = (
    [Place(he, en, aliases=al) for he, en, al in _CITIES]
    + [Place(he, en, aliases=al) for he, en, al in _REGIONS]
    + [Place(he, en, chs, che, al) for he, en, chs, che, al in _NEIGHBOURHOODS]
)

# Cities callers weigh together (the next town over, one bus ride away): what the recogniser
# should expect to hear after a caller has named the first one.
_NEAR: dict[str, tuple[str, ...]] = {
    "תל אביב": ("רמת גן", "גבעתיים", "חולון", "בת ים", "יפו", "הרצליה", "רמת השרון", "בני ברק"),
    "רמת גן": ("גבעתיים", "תל אביב", "בני ברק", "קריית אונו", "גבעת שמואל", "פתח תקווה"),
    "גבעתיים": ("רמת גן", "תל אביב", "בני ברק"),
    "חולון": ("בת ים", "ראשון לציון", "תל אביב", "יפו"),
    "בת ים": ("חולון", "ראשון לציון", "תל אביב", "יפו"),
    "ראשון לציון": ("חולון", "בת ים", "נס ציונה", "רחובות", "יבנה"),
    "פתח תקווה": ("ראש העין", "גבעת שמואל", "קריית אונו", "רמת גן", "בני ברק", "גני תקווה"),
    "הרצליה": ("רמת השרון", "רעננה", "כפר סבא", "תל אביב"),
    "רעננה": ("כפר סבא", "הרצליה", "הוד השרון", "רמת השרון"),
    "כפר סבא": ("רעננה", "הוד השרון", "כפר יונה"),
    "הוד השרון": ("כפר סבא", "רעננה", "רמת השרון"),
    "נתניה": ("כפר יונה", "אבן יהודה", "חדרה"),
    "ירושלים": ("מעלה אדומים", "בית שמש", "מבשרת ציון"),
    "חיפה": ("נשר", "טירת כרמל", "קריית ביאליק", "קריית מוצקין", "קריית אתא", "קריית ים"),
    "רחובות": ("נס ציונה", "ראשון לציון", "מזכרת בתיה", "יבנה", "גדרה"),
    "מודיעין": ("שוהם", "לוד", "רמלה"),
    "אשדוד": ("אשקלון", "יבנה", "גן יבנה"),
    "באר שבע": ("עומר", "מיתר", "להבים"),
    "חדרה": ("פרדס חנה כרכור", "אור עקיבא", "קיסריה", "נתניה"),
}


def near(place_he: str) -> tuple[str, ...]:
    """The cities next to ``place_he`` (a city, or the city of a neighbourhood label "X, city")."""
    city = place_he.rsplit(", ", 1)[-1]
    return _NEAR.get(city, ())
