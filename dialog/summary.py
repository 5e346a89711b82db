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
        return f"{amount / 1_000_000:.2f}".rstrip("0").rstrip(".") + (" מיליון" if hebrew else " million shekels")
    if amount % 1000 == 0:
        return f"{amount // 1000} אלף שקל" if hebrew else f"{amount // 1000} thousand shekels"
    return f"{amount:,} שקל" if hebrew else f"{amount:,} shekels"


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
    if "budget_ils" in keys and slots.budget_ils:
        parts.append(("עד " if hebrew else "up to ") + say_budget(slots.budget_ils, hebrew))
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
        if s.budget_ils:
            lines.append(f"תקציב: עד {s.budget_ils:,} ₪.")
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
        if s.budget_ils:
            lines.append(f"Budget: up to {s.budget_ils:,} ILS.")
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
