"""Everything the offline brain says, Hebrew and English, in one table.

Hebrew: the agent is a woman (מדברת, מקשיבה) and the caller's gender is unknown, so lines
addressed to the caller use forms that read right either way (infinitives, plural,
"אפשר", past forms spelt the same for both: "רצית").
"""
from __future__ import annotations

from dialog.base import CLARIFY_EN, CLARIFY_HE

HE = {
    "opening": "שלום, מדברת נועה מ-AgentLocator. באיזה אזור מחפשים נכס?",
    "clarify": CLARIFY_HE,
    "q_area": "באיזה אזור מחפשים?",
    "q_property_type": "איזה סוג נכס מחפשים, ובכמה חדרים?",
    "q_rooms": "כמה חדרים צריך?",
    "q_property_type_only": "איזה סוג נכס, דירה או בית פרטי?",
    "q_budget": "מה התקציב בערך?",
    "q_budget_rent": "מה התקציב לחודש, בערך?",
    "q_deal": "לקנייה או לשכירות?",
    "q_timeframe": "תוך כמה זמן אתם מתכננים לעבור?",
    "q_name": "איך קוראים לך?",
    "q_phone_confirm": "המספר שמסתיים ב-{digits} מתאים לחזרה?",
    "q_phone": "לאיזה מספר אפשר לחזור?",
    "rephrase": "גם הערכה כללית זה בסדר.",
    "go_on": "סליחה, אני מקשיבה. מה רצית להגיד?",
    "no_listings": "את הנכסים עצמם נציג בפגישה, לפי מה שחשוב לך.",
    "declined": "בסדר גמור, נדבר על זה בפגישה.",
    "acks": ("מעולה", "רשמתי", "מצוין", "הבנתי"),
    "nice_to_meet": "נעים מאוד, {name}.",
    "phone_ok": "מצוין, רשמתי.",
    "offer": "אפשר להיפגש {offer}?",
    "offer_again": "אין בעיה. אולי {offer}?",
    "offer_which": "מה נוח יותר, {offer}?",
    "slot_taken": "אוי, המועד הזה נתפס הרגע ביומן.",
    "offer_after_taken": "אולי {offer}?",
    "meeting_cancelled": "ביטלתי את הפגישה. יש עוד משהו?",
    "confirm": "אז {window}, לקבוע?",
    "booked": "קבענו {window}: {summary}.",
    "booked_question": "אשלח סיכום בוואטסאפ, יש עוד שאלה?",
    "anything_else": "יש עוד משהו?",
    "noted_else": "אעביר את זה לנציג שלנו. יש עוד משהו?",
    "updated_else": "עדכנתי. יש עוד משהו?",
    "bye_meeting": "תודה רבה{name}! נתראה {window}, יום נעים.",
    "bye": "תודה רבה{name}, נחזור אליך בקרוב. יום נעים.",
    "bye_lost": "בסדר גמור, תודה על הזמן ויום נעים.",
    "holding": "רק רגע.",
    "safe": "אפשר לחזור על זה?",
    # low ASR confidence but a clear value: one short check ("עד שני מיליון, נכון?")
    "confirm_value": "{value}, נכון?",
    "confirm_no": "אין בעיה.",
    # the caller talked over the goodbye (or right after it) only to say bye or thanks
    "bye_again": "שוב תודה, יום נעים.",
}

EN = {
    "opening": "Hi, this is Noa from AgentLocator. Which area are you looking in?",
    "clarify": CLARIFY_EN,
    "q_area": "Which area are you looking in?",
    "q_property_type": "What kind of property, and how many rooms?",
    "q_rooms": "How many rooms do you need?",
    "q_property_type_only": "What kind of property, an apartment or a house?",
    "q_budget": "What's your budget, roughly?",
    "q_budget_rent": "What's your monthly budget, roughly?",
    "q_deal": "To buy or to rent?",
    "q_timeframe": "When are you planning to move?",
    "q_name": "And what's your name?",
    "q_phone_confirm": "Can we reach you on the number ending {digits}?",
    "q_phone": "What number can we reach you on?",
    "rephrase": "A rough idea is fine.",
    "go_on": "Sorry, go ahead. What were you saying?",
    "no_listings": "Our agent will show matching properties at the meeting.",
    "declined": "No problem, we can cover that at the meeting.",
    "acks": ("Great", "Got it", "Perfect", "Okay"),
    "nice_to_meet": "Nice to meet you, {name}.",
    "phone_ok": "Perfect, noted.",
    "offer": "Could we meet {offer}?",
    "offer_again": "No problem. How about {offer}?",
    "offer_which": "Which suits you better, {offer}?",
    "slot_taken": "Sorry, that time was just taken in the calendar.",
    "offer_after_taken": "How about {offer}?",
    "meeting_cancelled": "I've cancelled the meeting. Anything else?",
    "confirm": "So {window}, shall I book it?",
    "booked": "Booked for {window}: {summary}.",
    "booked_question": "I'll send a WhatsApp summary, anything else?",
    "anything_else": "Anything else?",
    "noted_else": "I'll pass that on to our agent. Anything else?",
    "updated_else": "Updated. Anything else?",
    "bye_meeting": "Thank you{name}! See you {window}, have a great day.",
    "bye": "Thank you{name}, we'll be in touch soon. Have a great day.",
    "bye_lost": "No problem, thanks for your time and have a great day.",
    "holding": "One moment.",
    "safe": "Could you say that again?",
    "confirm_value": "{value}, right?",
    "confirm_no": "No problem.",
    "bye_again": "Thanks again, have a great day.",
}


def table(hebrew: bool) -> dict:
    return HE if hebrew else EN


def is_hebrew(language: str) -> bool:
    return language.lower().startswith(("he", "iw"))


def fixed_lines(language: str) -> list[str]:
    """The lines every call may speak word for word, as the synthesizer is asked for them, so
    the TTS can cache them at startup: the opening, the clarify line, the goodbyes that carry
    no name or date, the short goodbye said again (whole, as the OpenAI brain speaks them, and sentence by sentence, as the
    rule brain does) and the holding line."""
    from dialog.guardrails import sentences  # guardrails imports this module

    hebrew = is_hebrew(language)
    say = table(hebrew)
    lines = [say["opening"], CLARIFY_HE if hebrew else CLARIFY_EN]
    for goodbye in (say["bye"].format(name=""), say["bye_lost"], say["bye_again"]):
        lines.append(goodbye)
        lines.extend(sentences(goodbye))
    lines.append(say["holding"])
    return list(dict.fromkeys(line for line in lines if line))
