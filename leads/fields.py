"""What the store accepts: the format and the length of every stored field.

The store (leads.store) runs every value through these rules before any SQL, so SQLite and
PostgreSQL see the same, already valid values and give the same outcome (SQLite would keep a
10 MB string in a String(64) column; PostgreSQL would fail the whole transaction on it).

- Identifiers are checked by format and rejected, never repaired: ``call_sid`` ``CA`` + 32 hex,
  ``stream_sid`` ``MZ`` + 32 hex, ``account_sid`` ``AC`` + 32 hex (Twilio's formats).
- Phone numbers are normalised to E.164 (``+972501234567``, at most :data:`PHONE_MAX` = 16
  characters) with the ``phonenumbers`` library; a local number is read as Israeli
  (``050-123-4567``). A withheld caller ID (``anonymous``, ``restricted`` ... and Twilio's
  pseudo-numbers for them) is ``""``, an anonymous caller. Anything else is rejected.
- Free text is cut to its limit (below); a closed set (the transcript's speaker) is checked.
- Numbers are checked for range (slots) or clamped to the column (times in ms, counts).

A rejection is an :class:`InvalidField` (a ValueError) naming the field; its message shows
only the start of the value and its length.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable, Mapping

# Limits, in characters. The slot texts are short phrases the brain extracted ("תל אביב",
# "דירת 4 חדרים", "תוך 3 חודשים"): 100 leaves room for any real one. A transcript turn is one
# utterance or one agent reply (a reply is a few sentences, max_tokens 120): 2000 is several
# times the longest real one. The summary is the WhatsApp follow-up's body: Twilio refuses a
# message body over 1600 characters, so nothing longer can ever be sent.
PHONE_MAX = 16  # "+" and at most 15 digits (E.164)
SID_LEN = 34  # two letters and 32 hex digits
SLOT_TEXT_MAX = 100  # leads.name / area / property_type / timeframe
TRANSCRIPT_TEXT_MAX = 2000  # transcripts.text, per turn
SUMMARY_MAX = 1600  # calls.pending_summary, outbox.body of a WhatsApp item
CLOSE_REASON_MAX = 64  # calls.close_reason
OUTCOME_MAX = 32  # calls.outcome, leads.status
TIMELINE_KIND_MAX = 32  # timeline.kind
TIMELINE_DETAIL_MAX = 2048  # timeline.detail, as JSON
TIMELINE_DETAIL_KEYS = 24
TIMELINE_TEXT_MAX = 200
METRIC_LIST_MAX = 1000  # items of each per-turn list in calls.metrics
ERROR_TEXT_MAX = 500  # outbox.last_error
PROVIDER_ID_MAX = 64  # outbox.provider_id (a Twilio MessageSid is 34)
INT_MAX = 2**31 - 1  # INTEGER columns (PostgreSQL's int4): t_ms, turns
ROOMS_RANGE = (0.0, 100.0)
BUDGET_RANGE = (0, 10**12)  # ILS
DEFAULT_REGION = "IL"

SPEAKERS = frozenset({"agent", "caller"})
# Twilio's caller ID when the caller withheld it: words, and the keypad spellings it uses.
WITHHELD = frozenset({
    "anonymous", "restricted", "unknown", "unavailable", "blocked", "private", "withheld",
    "+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253",
})
_SID = {prefix: re.compile(rf"{prefix}[0-9a-fA-F]{{32}}") for prefix in ("CA", "MZ", "AC", "SM", "MM")}
_PHONE_CHARS = re.compile(r"[0-9+\-(). ]+")
_PHONE_INPUT_MAX = 32  # characters of input even looked at (spaces and dashes included)


class InvalidField(ValueError):
    """A value the store will not keep. ``field`` names it; the message shows its start only."""

    def __init__(self, field: str, reason: str, value: object = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason} (got {preview(value)})")


def preview(value: object, keep: int = 24) -> str:
    if isinstance(value, str):
        shown = repr(value[:keep]) + ("…" if len(value) > keep else "")
        return f"{shown}, {len(value)} chars"
    return type(value).__name__


# -- identifiers ------------------------------------------------------------------------------

def sid(value: object, prefix: str, field: str) -> str:
    if not isinstance(value, str) or len(value) != SID_LEN or not _SID[prefix].fullmatch(value):
        raise InvalidField(field, f"not a Twilio SID ({prefix} and 32 hex digits)", value)
    return value


def call_sid(value: object) -> str:
    return sid(value, "CA", "call_sid")


def stream_sid(value: object) -> str:
    return sid(value, "MZ", "stream_sid")


def account_sid(value: object) -> str:
    return sid(value, "AC", "account_sid")


def message_sid(value: object) -> bool:
    """Whether ``value`` looks like a Twilio message SID (SM/MM + 32 hex)."""
    return isinstance(value, str) and len(value) == SID_LEN and bool(
        _SID["SM"].fullmatch(value) or _SID["MM"].fullmatch(value))


# -- phone numbers ----------------------------------------------------------------------------

def phone(value: object, field: str = "phone") -> str:
    """E.164 (``+972501234567``), or ``""`` for no / a withheld number. Rejects the rest."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidField(field, "not text", value)
    text = value.strip()
    if not text:
        return ""
    if len(text) > _PHONE_INPUT_MAX:
        raise InvalidField(field, f"longer than {_PHONE_INPUT_MAX} characters", value)
    if text.lower() in WITHHELD:
        return ""
    if not _PHONE_CHARS.fullmatch(text):
        raise InvalidField(field, "not a phone number", value)
    import phonenumbers

    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidField(field, "not a phone number", value) from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidField(field, "not a possible phone number", value)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 in WITHHELD:
        return ""
    if len(e164) > PHONE_MAX:
        raise InvalidField(field, f"longer than {PHONE_MAX} characters in E.164", value)
    return e164


# -- text and numbers -------------------------------------------------------------------------

def text(value: object, limit: int, field: str) -> str | None:
    """``value`` cut to ``limit`` characters (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(field, "not text", value)
    return value[:limit]


def speaker(value: object) -> str:
    if value not in SPEAKERS:
        raise InvalidField("speaker", "neither 'agent' nor 'caller'", value)
    return value  # type: ignore[return-value]


def clamp_int(value: object, field: str, low: int = 0, high: int = INT_MAX) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise InvalidField(field, "not a whole number", value) from None
    return max(low, min(high, number))


def rooms(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not ROOMS_RANGE[0] <= value <= ROOMS_RANGE[1]:
        raise InvalidField("rooms", f"not a number of rooms in {ROOMS_RANGE}", value)
    return float(value)


def budget(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not BUDGET_RANGE[0] <= value <= BUDGET_RANGE[1]:
        raise InvalidField("budget_ils", f"not an amount in {BUDGET_RANGE}", value)
    return value


DEALS = ("buy", "rent")


def deal(value: object) -> str | None:
    if value is None:
        return None
    if value not in DEALS:
        raise InvalidField("deal", f"not one of {DEALS}", value)
    return value  # type: ignore[return-value]


def slot_texts(values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The lead's text slots cut to :data:`SLOT_TEXT_MAX`."""
    return {name: text(values.get(name), SLOT_TEXT_MAX, name) for name in names}


# -- structured values ------------------------------------------------------------------------

def timeline_detail(detail: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """At most :data:`TIMELINE_DETAIL_KEYS` keys of scalars (texts cut), at most
    :data:`TIMELINE_DETAIL_MAX` characters as JSON; else only a note that it was cut."""
    if not detail:
        return None
    out: dict[str, Any] = {}
    for key, value in list(detail.items())[:TIMELINE_DETAIL_KEYS]:
        key = str(key)[:TIMELINE_KIND_MAX]
        if value is None or isinstance(value, bool):
            out[key] = value
        elif isinstance(value, (int, float)):
            out[key] = value if math.isfinite(value) and abs(value) < 1e15 else None
        else:
            out[key] = (value if isinstance(value, str) else json.dumps(value, default=str)[:TIMELINE_TEXT_MAX * 2]
                        )[:TIMELINE_TEXT_MAX]
    if len(json.dumps(out, ensure_ascii=False)) > TIMELINE_DETAIL_MAX:
        return {"truncated": True}
    return out


def metrics(values: Mapping[str, Any]) -> dict[str, Any]:
    """leads.base.CallMetrics as stored: per-turn lists cut to :data:`METRIC_LIST_MAX`, counts
    clamped to the INTEGER range."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, list):
            out[key] = [float(v) for v in value[:METRIC_LIST_MAX] if isinstance(v, (int, float)) and math.isfinite(v)]
        elif value is None or isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int):
            out[key] = clamp_int(value, key)
        elif isinstance(value, float):
            out[key] = value if math.isfinite(value) else None
        else:
            out[key] = None
    return out


def sid_for(prefix: str, name: str) -> str:
    """A well-formed SID named by any text (the simulated caller, tests): ``name`` itself when it
    already is one, else ``prefix`` and the MD5 of ``name`` (32 hex digits)."""
    import hashlib

    if len(name) == SID_LEN and _SID[prefix].fullmatch(name):
        return name
    return prefix + hashlib.md5(name.encode()).hexdigest()
