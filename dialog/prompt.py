"""What the model is told: the user's system prompt (verbatim), three few-shot exchanges,
the per-turn state note, and the one tool through which it reports slots.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from dialog.base import CLARIFY_HE, LeadState
from dialog.schedule import TZ, say_window

# mission.md item 4, the user's words, unchanged (line breaks included).
SYSTEM_PROMPT_HE = (
    "את סוכנת נדל״ן של AgentLocator. המטרה: לאסוף במהירות אזור/סוג/תקציב/טווח/פרטי קשר.\n"
    "כל תשובה—1–2 משפטים קצרים (≤20 מילים) ושאלה אחת בסוף. אם לא שמעת/לא בטוחה—\n"
    "‘לא בטוח ששמעתי נכון, אפשר לחזור על זה?’. אין המצאות ואין הצעת דירות בלי נתונים.\n"
    "כשקוטעים אותך—עצרי מיד ובקשי מהלקוח להמשיך. כשסלוטים מלאים—הצעי תיאום פגישה:\n"
    "2–3 חלונות זמן קצרים, אשרי, וסכמי לשליחה בוואטסאפ."
)

INTERRUPTED_MARK = "(קטע אותך) "  # prefixed to a caller turn that barged in on the agent
CUT_MARK = "—"  # appended to an agent turn the caller heard only in part

# Three short exchanges: didn't hear → clarify; interrupted → stop and invite; scheduling.
FEW_SHOT: list[dict[str, str]] = [
    {"role": "user", "content": "אה... כן... ה... (רעש)"},
    {"role": "assistant", "content": CLARIFY_HE},
    {"role": "assistant", "content": "מעולה, דירת 4 חדרים ברמת גן. ומה ה" + CUT_MARK},
    {"role": "user", "content": INTERRUPTED_MARK + "רגע, רגע"},
    {"role": "assistant", "content": "סליחה, אני מקשיבה. מה רצית להגיד?"},
    {"role": "user", "content": "לקנות, עד מיליון ושמונה מאות, ואנחנו רוצים לעבור תוך חצי שנה. קוראים לי רון, והמספר שלי נכון."},
    {"role": "assistant", "content": "תודה רון, רשמתי. אפשר להיפגש מחר בעשר או ביום חמישי בארבע?"},
    {"role": "user", "content": "חמישי בארבע"},
    {"role": "assistant", "content": "אז ביום חמישי בארבע, לקבוע?"},
    {"role": "user", "content": "כן"},
    {"role": "assistant", "content": "קבענו ביום חמישי בארבע: דירת 4 חדרים ברמת גן, עד מיליון ושמונה מאות. אשלח סיכום בוואטסאפ, יש עוד שאלה?"},
]

TOOL_NAME = "update_lead"
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": (
                "Record what the caller just said about their search or the meeting. Call it in the same "
                "reply as your spoken answer, with only the fields the caller gave or changed."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "area": {"type": "string", "description": "city or neighbourhood, as the caller said it"},
                    "property_type": {"type": "string", "description": "e.g. דירה, דירת גן, פנטהאוז, בית פרטי"},
                    "rooms": {"type": "number"},
                    "budget_ils": {"type": "integer", "description": (
                        "maximum budget in shekels, as a number: 'מיליון שמונה' = 1800000, 'שתיים וחצי מיליון' = "
                        "2500000; for a rent, per month ('שמונה אלף לחודש' = 8000)")},
                    "deal": {"type": "string", "enum": ["buy", "rent"], "description": (
                        "buy (קנייה) or rent (שכירות); a bare amount like 'שמונה' is ambiguous: ask "
                        "'לקנייה או לשכירות?' before recording the budget")},
                    "budget_declined": {"type": "boolean", "description": "the caller will not say a budget"},
                    "timeframe": {"type": "string"},
                    "name": {"type": "string"},
                    "phone_confirmed": {"type": "boolean", "description": "the caller confirmed the caller-ID number"},
                    "phone": {"type": "string", "description": "a different number the caller gave"},
                    "meeting_window": {"type": "integer", "description": "0-based index of the offered window chosen"},
                    "meeting_confirmed": {"type": "boolean", "description": "the caller confirmed the chosen window"},
                    "not_interested": {"type": "boolean"},
                    "call_done": {"type": "boolean", "description": "the caller said goodbye / has nothing else"},
                },
                "additionalProperties": False,
            },
        },
    }
]


def state_note(
    lead: LeadState, caller_phone: str | None, now: dt.datetime, windows: Sequence[dt.datetime],
    chosen: dt.datetime | None, hebrew: bool, declined: Sequence[str],
) -> str:
    """The facts the model must not invent: what is known, what is missing, the real free slots."""
    s = lead.slots
    known = {k: getattr(s, k) for k in ("area", "property_type", "rooms", "budget_ils", "deal", "timeframe", "name")}
    lines = [
        f"עכשיו: {now.astimezone(TZ):%A %d.%m.%Y %H:%M} (שעון ישראל).",
        "ידוע: " + ", ".join(f"{k}={v}" for k, v in known.items() if v is not None) if any(
            v is not None for v in known.values()) else "ידוע: עדיין כלום.",
        "חסר: " + (", ".join(m for m in s.missing() if m not in declined) or "כלום — הצעי פגישה."),
    ]
    if s.deal == "rent":
        lines.append("שכירות: התקציב הוא לחודש.")
    elif s.deal is None and s.budget_ils is None:
        lines.append("סכום בלי יחידה (למשל 'שמונה') לא ברור: שאלי רק 'לקנייה או לשכירות?' ואז רשמי.")
    if caller_phone and not s.phone_confirmed:
        lines.append(f"מספר המתקשר ידוע (מסתיים ב-{caller_phone[-4:]}): בקשי אישור, אל תבקשי ספרות.")
    if windows:
        lines.append(
            "חלונות פנויים לפגישה (הציעי רק מהם, 2–3): "
            + "; ".join(f"{i}: {say_window(w, now, True)} ({w:%d.%m %H:%M})" for i, w in enumerate(windows))
        )
    if chosen:
        lines.append(f"הלקוח בחר: {say_window(chosen, now, True)}; חסר אישור.")
    if lead.status == "meeting_booked" and lead.meeting_at:
        lines.append(f"הפגישה נקבעה: {say_window(lead.meeting_at, now, True)}.")
    lines.append(f"דווחי פרטים רק דרך הכלי {TOOL_NAME}, באותה תשובה שבה את עונה בקול.")
    if not hebrew:
        lines.append("The caller speaks English: reply in English, same rules.")
    return "\n".join(lines)
