"""What comes in from outside, checked once at the edge: Twilio SIDs, phone numbers, the
stream's custom parameters. Everything past this module (the session, the store, the
dashboard) can rely on these shapes and sizes.
"""
from __future__ import annotations

import re
from typing import Mapping

import phonenumbers

SID_RE = {
    "CallSid": re.compile(r"CA[0-9a-f]{32}"),
    "StreamSid": re.compile(r"MZ[0-9a-f]{32}"),
    "AccountSid": re.compile(r"AC[0-9a-f]{32}"),
}
E164_MAX = 16  # "+" and at most 15 digits
PARAM_MAX_BYTES = 1024  # one custom parameter's value
PARAM_NAME_MAX = 64
PARAMS_MAX = 16  # custom parameters on one stream
# The call's webhook parameters that the TwiML hands to the stream (and the token binds).
CALL_PARAMS = ("From", "To", "CallSid", "AccountSid", "Direction", "CallerName", "ForwardedFrom")
PHONE_PARAMS = ("From", "To", "ForwardedFrom")
DIRECTIONS = ("inbound", "outbound-api", "outbound-dial", "trunking-originating", "trunking-terminating")
CALLER_NAME_MAX = 64


def valid_sid(kind: str, value: object) -> bool:
    return isinstance(value, str) and SID_RE[kind].fullmatch(value) is not None


def e164(value: object) -> str | None:
    """The number in E.164 (``+972501234567``) if ``value`` is one, else None.

    Twilio's From is not always a number (``anonymous``, ``client:alice``, ``sip:...``): those
    are not errors, the call just has no callable number."""
    if not isinstance(value, str) or not value.startswith("+") or len(value) > E164_MAX:
        return None
    if not value[1:].isdigit() or not value[1:].isascii() or value[1] == "0":
        return None
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted if len(formatted) <= E164_MAX else None


def call_params(params: Mapping[str, str]) -> dict[str, str]:
    """The call parameters worth forwarding to the stream, each checked and normalised: a
    phone number that is not E.164 is left out (the call goes on without it), a CallerName is
    cut to CALLER_NAME_MAX, an unknown Direction is dropped."""
    out: dict[str, str] = {}
    for name in CALL_PARAMS:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            continue
        if name in PHONE_PARAMS:
            number = e164(value)
            if number:
                out[name] = number
        elif name in ("CallSid", "AccountSid"):
            if valid_sid(name, value):
                out[name] = value
        elif name == "Direction":
            if value in DIRECTIONS:
                out[name] = value
        elif name == "CallerName":
            cleaned = "".join(c for c in value if c.isprintable())[:CALLER_NAME_MAX].strip()
            if cleaned:
                out[name] = cleaned
    return out


def custom_params_problem(params: Mapping[str, object]) -> str | None:
    """Why a stream's customParameters are refused (None: fine)."""
    if len(params) > PARAMS_MAX:
        return f"more than {PARAMS_MAX} custom parameters"
    for name, value in params.items():
        if not isinstance(name, str) or not name or len(name) > PARAM_NAME_MAX:
            return "a custom parameter name is empty or too long"
        if not isinstance(value, str):
            return f"custom parameter {name[:PARAM_NAME_MAX]!r} is not a string"
        if len(value.encode("utf-8", "surrogatepass")) > PARAM_MAX_BYTES:
            return f"custom parameter {name!r} is over {PARAM_MAX_BYTES} bytes"
    return None
