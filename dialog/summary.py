"""How the lead is said: short spoken echoes, the one-line booking summary, the WhatsApp text."""
from __future__ import annotations

import datetime as dt

from dialog.base import LeadState, Slots
from dialog.schedule import TZ, _EN_DAYS, _HE_DAYS


_HE_MASC = {2: "שניים", 3: "שלושה", 4: "ארבעה", 5: "חמישה", 6: "שישה", 7: "שבעה", 8: "שמונה", 9: "תשעה"}


def say_budget(amount: int, hebrew: bool) -> str:
    if amount >= 1_000_000 and amount % 500_000 == 0:
        millions, half = divmod(amount, 1_000_000)
        if hebrew:
            if millions == 1:
                return "מיליון וחצי" if half else "מיליון"
            if half:
                spoken = _HE_MASC.get(millions, str(millions))
                return f"{spoken} וחצי מיליון"
            return f"{millions} מיליון"
        return f"{amount / 1_000_000:g} million shekels"
    if amount >= 1_000_000:
        return f"{amount / 1_000_000:.6f}".rstrip("0").rstrip(".") + (" מיליון" if hebrew else " million shekels")  # exact: 1.234, not 1.23
    if amount % 1000 == 0:
        return f"{amount // 1000} אלף שקל" if hebrew else f"{amount // 1000} thousand shekels"
    return f"{amount:,} שקל" if hebrew else f"{amount:,} shekels"


_HE_MILLIONS = {1: "מיליון", 2: "שני מיליון", **{n: f"{w} מיליון" for n, w in _HE_MASC.items() if n > 2}, 10: "עשרה מיליון"}
_HE_HUNDREDS = {
    1: "מאה", 2: "מאתיים", 3: "שלוש מאות", 4: "ארבע מאות", 5: "חמש מאות", 6: "שש מאות", 7: "שבע מאות",
    8: "שמונה מאות", 9: "תשע מאות",
}
_EN_NUM = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)


def say_budget_words(amount: int, hebrew: bool) -> str | None:
    """A budget said in words, the way people say it on the phone: "מיליון ושמונה מאות אלף",
    "שני מיליון", "שניים וחצי מיליון", "שמונה מאות אלף"; "one point eight million", "two
    and a half million", "eight hundred thousand". None when it is not a round figure (a
    multiple of 50,000 up to ten million in Hebrew, twenty million in English).

    Words, not digits: a line that echoes an amount back for confirmation must not read as
    a quoted price (guardrails look for digits next to money words)."""
    if amount <= 0 or amount % 50_000:
        return None
    millions, rest = divmod(amount, 1_000_000)
    hundreds, fifty = divmod(rest, 100_000)
    if hebrew:
        if millions > 10:
            return None
        if millions and rest == 500_000:
            return "מיליון וחצי" if millions == 1 else f"{_HE_MASC.get(millions, 'עשרה')} וחצי מיליון"
        parts = [_HE_HUNDREDS[hundreds]] if hundreds else []
        if fifty:
            parts.append("וחמישים" if hundreds else "חמישים")
        thousands = " ".join(parts) + " אלף" if parts else ""
        if not millions:
            return thousands
        return _HE_MILLIONS[millions] + (f" ו{thousands}" if thousands else "")
    if millions > 20:
        return None
    if millions:
        if rest == 0:
            return f"{_EN_NUM[millions]} million"
        if rest == 500_000:
            return f"{_EN_NUM[millions]} and a half million"
        decimals = f"{rest // 10_000:02d}".rstrip("0")  # 1.25 -> "two five", 1.8 -> "eight"
        return f"{_EN_NUM[millions]} point {' '.join(_EN_NUM[int(d)] for d in decimals)} million"
    said = f"{_EN_NUM[hundreds]} hundred" if hundreds else ""
    if fifty:
        said = f"{said} fifty".strip()
    return f"{said} thousand"


def say_property(slots: Slots, hebrew: bool) -> str | None:
    rooms = f"{slots.rooms:g}" if slots.rooms is not None else None
    prop = slots.property_type
    if hebrew:
        if prop == "דירה" and rooms:
            return f"דירת {rooms} חדרים" if rooms != "1" else "דירת חדר"
        if prop and rooms:
            return f"{prop}, {rooms} חדרים"
        return prop or (f"{rooms} חדרים" if rooms else None)
    if prop and rooms:
        return f"a {rooms}-room {prop}"
    if prop:
        return ("an " if prop[0] in "aeiou" else "a ") + prop
    return f"{rooms} rooms" if rooms else None


def say_deal(deal: str, hebrew: bool) -> str:
    if hebrew:
        return {"buy": "לקנייה", "rent": "לשכירות"}.get(deal, deal)
    return {"buy": "to buy", "rent": "to rent"}.get(deal, deal)


def deal_label(deal: str | None, hebrew: bool) -> str | None:
    """The deal as a noun, for the summary and the dashboard: "קנייה" / "שכירות"."""
    if deal is None:
        return None
    if hebrew:
        return {"buy": "קנייה", "rent": "שכירות"}.get(deal, deal)
    return {"buy": "buying", "rent": "renting"}.get(deal, deal)


def say_budget_of(slots: Slots, hebrew: bool) -> str:
    """The budget as echoed: "עד 2 מיליון", "עד 8 אלף שקל לחודש" for a rent."""
    said = ("עד " if hebrew else "up to ") + say_budget(slots.budget_ils or 0, hebrew)
    if slots.deal == "rent":
        said += " לחודש" if hebrew else " a month"
    return said


def say_area(area: str, hebrew: bool) -> str:
    return f"ב{area}" if hebrew else f"in {area}"


def say_timeframe(timeframe: str, hebrew: bool) -> str:
    if hebrew:
        return {"מיידי": "כמה שיותר מהר", "גמיש": "בלי לחץ"}.get(timeframe, timeframe)
    return {"flexible": "no rush"}.get(timeframe, timeframe)


def echo(slots: Slots, keys: list[str], hebrew: bool) -> list[str]:
    """Short spoken pieces for the slots just heard, most telling first."""
    parts: list[str] = []
    if "property_type" in keys or "rooms" in keys:
        p = say_property(slots, hebrew)
        if p:
            parts.append(p)
    if "area" in keys and slots.area:
        area = say_area(slots.area, hebrew)
        if parts:  # "דירת 4 חדרים בתל אביב" reads as one thing
            parts[-1] = f"{parts[-1]} {area}" if "," not in parts[-1] else f"{parts[-1]}, {area}"
        else:
            parts.append(area)
    if "deal" in keys and slots.deal and not ("budget_ils" in keys and slots.budget_ils):
        # said on its own ("לשכור"); with an amount the amount says it ("לחודש")
        deal = say_deal(slots.deal, hebrew)
        if parts and "," not in parts[-1]:  # "דירה בחולון לשכירות"
            parts[-1] = f"{parts[-1]} {deal}"
        else:
            parts.append(deal)
    if "budget_ils" in keys and slots.budget_ils:
        parts.append(say_budget_of(slots, hebrew))
    if "timeframe" in keys and slots.timeframe:
        parts.append(say_timeframe(slots.timeframe, hebrew))
    return parts


def one_line(slots: Slots, hebrew: bool) -> list[str]:
    """The booking summary's pieces, in the order they are dropped last."""
    return echo(slots, ["property_type", "area", "budget_ils"], hebrew)


def _phone_local(phone: str) -> str:
    if phone.startswith("+972"):
        local = "0" + phone[4:]
        return f"{local[:3]}-{local[3:6]}-{local[6:]}" if len(local) == 10 else local
    return phone


def whatsapp(lead: LeadState, hebrew: bool) -> str:
    """The follow-up message: who, what they look for, the meeting (or that we'll call back)."""
    s = lead.slots
    lines: list[str] = []
    if hebrew:
        lines.append(f"שלום{' ' + s.name if s.name else ''}, תודה על השיחה עם AgentLocator.")
        wants = [x for x in (say_property(s, True), s.area and f"ב{s.area}") if x]
        if wants:
            lines.append("מחפשים: " + " ".join(wants) + ".")
        if s.deal:
            lines.append(f"עסקה: {deal_label(s.deal, True)}.")
        if s.budget_ils:
            lines.append(f"תקציב: עד {s.budget_ils:,} ₪{' לחודש' if s.deal == 'rent' else ''}.")
        if s.timeframe:
            lines.append(f"מועד: {say_timeframe(s.timeframe, True)}.")
        if lead.meeting_at:
            at = lead.meeting_at.astimezone(TZ)
            lines.append(f"פגישה: יום {_HE_DAYS[at.weekday()]}, {at:%d.%m.%Y} בשעה {at:%H:%M}.")
        elif lead.status == "lost":
            lines.append("תודה על הזמן; אם משהו ישתנה, נשמח לעזור.")
        else:
            lines.append("נחזור אליך בהקדם לתיאום פגישה.")
        if s.phone:
            lines.append(f"טלפון לחזרה: {_phone_local(s.phone)}.")
    else:
        lines.append(f"Hi{' ' + s.name if s.name else ''}, thanks for talking with AgentLocator.")
        wants = [x for x in (say_property(s, False), s.area and f"in {s.area}") if x]
        if wants:
            lines.append("Looking for: " + " ".join(wants) + ".")
        if s.deal:
            lines.append(f"Deal: {deal_label(s.deal, False)}.")
        if s.budget_ils:
            lines.append(f"Budget: up to {s.budget_ils:,} ILS{' a month' if s.deal == 'rent' else ''}.")
        if s.timeframe:
            lines.append(f"Timeframe: {s.timeframe}.")
        if lead.meeting_at:
            at = lead.meeting_at.astimezone(TZ)
            lines.append(f"Meeting: {_EN_DAYS[at.weekday()]}, {at:%d.%m.%Y} at {at:%H:%M} (Israel time).")
        elif lead.status == "lost":
            lines.append("Thanks for your time; if anything changes, we'd be glad to help.")
        else:
            lines.append("We'll call you back soon to set up a meeting.")
        if s.phone:
            lines.append(f"Contact phone: {_phone_local(s.phone)}.")
    return "\n".join(lines)


def meeting_iso(at: dt.datetime | None) -> str | None:
    return at.astimezone(TZ).isoformat() if at else None
