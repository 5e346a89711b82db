"""Production logs: one JSON object per line on stdout, a fixed set of events.

Every call-scoped line carries ``call_sid`` and ``t`` (ms since call start, from the
session's own clock, passed in: this module reads no clocks for call time).

Every line is cleaned on its way out (:func:`clean`), whoever logged it:

- secrets are redacted everywhere: the value of any field whose name looks secret (``*token*``,
  ``*secret*``, ``*password*``, ``*key*``, ``authorization``, ``cookie``, ``*signature*``,
  ``*credential*``; booleans and None stay, they tell only whether one is set), a URL's
  password (``scheme://user:[redacted]@host``), secret query parameters (``?token=``),
  ``Bearer``/``Basic`` credentials, ``name=value`` / ``"name": "value"`` pairs with a secret
  name, OpenAI/Google key shapes and PEM private keys inside any text, and the exact values of
  the process's own secrets (every environment variable with a secret-looking name, and the
  password of any URL in the environment such as DATABASE_URL), read once by :func:`configure`;
- phone numbers are masked (``+97250•••4567``: country code and 2 digits, then the last 4) in
  the fields that carry them (``from_number``, ``to_number``, ``phone``, ``to``, ``from`` ...)
  and inside any text (E.164 and Israeli local forms), unless ``LOG_PII=1`` was set when
  :func:`configure` ran (a debugging switch: never in production);
- every string is capped at :data:`MAX_STR_CHARS` and every list/dict at :data:`MAX_ITEMS`, so a
  peer's 10 MB value makes a short line.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import sys
from typing import Any, Mapping
from urllib.parse import urlsplit

import msgspec

EVENTS = frozenset(
    {
        "STATE_CHANGE", "EOU", "ASR_TEXT", "TTS_START", "TTS_END", "MARK_SENT", "MARK_ACK",
        "WS_KEEPALIVE", "WS_CLOSE", "BARGE_IN", "CALL_START", "CALL_END", "LEAD_SAVED",
        "WHATSAPP_SENT", "ERROR",
        # service-level (not per call)
        "STARTUP", "SHUTDOWN", "WEBHOOK", "PROVIDER_SWITCH", "PROTOCOL",
        # the store: database down / up, writes journaled / replayed, dead instances recovered
        "STORE",
        # leads flowing in (intake API, Facebook Lead Ads) and the speed-to-lead dialer's calls
        "INTAKE", "DIAL",
        # the realtor's calendar: a meeting booked / moved / cancelled / found taken, a
        # calendar that did not answer (the call goes on with the office-hour rules)
        "MEETING", "CALENDAR",
        # call recordings: one finished (seconds, bytes, encoder CPU), old ones pruned
        "RECORDING",
    }
)

PII_ENV = "LOG_PII"
REDACTED = "[redacted]"
MASK = "•••"
MAX_STR_CHARS = 4096  # one string value in a line, after cleaning
SCAN_CHARS = 65536  # what is cleaned of a longer string before it is cut to MAX_STR_CHARS
MAX_ITEMS = 100  # items of one list / dict value
MAX_DEPTH = 6
MIN_SECRET_LEN = 8  # an environment secret shorter than this is not searched for in free text

_encoder = msgspec.json.Encoder()
_logger = logging.getLogger("agentlocator")
WORKER_ENV = "AGENTLOCATOR_WORKER"  # set by `serve --workers N` for each worker (0..N-1)
_static: dict[str, Any] = {}  # on every line: {"worker": n} in a worker process

# -- secrets ------------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SECRET_NAME = re.compile(
    r"token|secret|passw|passphrase|authoriz|cookie|credential|signature|api_?key|private_?key|access_?key"
    r"|(?:^|_)(?:key|pwd|auth|sig|session)(?:_|$)"
)
_NAME_CHARS = r"[\w.\-]*"
_SECRET_WORDS = r"(?:token|secret|passw\w*|api[_-]?key|private[_-]?key|access[_-]?key|authorization|auth|signature|sig|key|pwd)"
# (pattern, replacement, a substring without which the pattern cannot match)
_TEXT_RULES: list[tuple[re.Pattern[str], str, str]] = [
    # scheme://user:password@host -> scheme://user:[redacted]@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/@:'\"]*):[^\s/'\"]*@"), r"\1:" + REDACTED + "@", "://"),
    # ?token=... &api_key=... (query strings, form bodies)
    (re.compile(r"(?i)([?&;]" + _NAME_CHARS + _SECRET_WORDS + _NAME_CHARS + r"=)[^&\s#'\"]+"), r"\1" + REDACTED, "="),
    # Authorization: Bearer xxx / Basic xxx
    (re.compile(r"\b([Bb]earer|BEARER)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED, "earer"),
    (re.compile(r"\b(Basic|BASIC)\s+[A-Za-z0-9+/]{12,}={0,2}"), r"\1 " + REDACTED, "asic"),
    # api_key=xxx, password: 'xxx', "token": "xxx"
    (re.compile(r"(?i)(\b" + _NAME_CHARS + _SECRET_WORDS + _NAME_CHARS + r"['\"]?\s*[=:]\s*)(['\"]?)[^\s'\",;&)}\]]+"),
     r"\1\2" + REDACTED, ""),
    # well-known key shapes
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), REDACTED, "sk-"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), REDACTED, "AIza"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"), REDACTED, "-----BEGIN"),
]


@functools.lru_cache(maxsize=1024)
def secret_name(name: str) -> bool:
    """A field or variable name whose value is a secret (``DASHBOARD_TOKEN``, ``apiKey`` ...)."""
    return bool(_SECRET_NAME.search(_CAMEL.sub("_", name).lower().replace("-", "_")))


def environment_secrets(env: Mapping[str, str]) -> list[str]:
    """The values to redact wherever they appear: secret-named variables, and URL passwords."""
    found: set[str] = set()
    for name, value in env.items():
        value = (value or "").strip()
        if not value:
            continue
        if secret_name(name) and len(value) >= MIN_SECRET_LEN:
            found.add(value)
        if "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password and len(password) >= MIN_SECRET_LEN:
                found.add(password)
    return sorted(found, key=len, reverse=True)


# -- phone numbers ------------------------------------------------------------------------------

PHONE_FIELDS = frozenset({
    "from_number", "to_number", "phone", "phone_number", "from", "to", "caller", "called", "number",
    "lead_number", "forwarded_from", "msisdn", "caller_phone",
})
_PHONE_TEXT = re.compile(
    r"(?<![\w+])(?:\+[1-9](?:[ \-.]?\d){6,14}|0(?:5\d|7\d|[2-489])(?:[ \-.]?\d){7})(?!\d)"
)
_DIGITS = re.compile(r"\d")


def _country_codes() -> frozenset[str]:
    try:
        from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

        return frozenset(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE)
    except Exception:  # pragma: no cover - phonenumbers is a dependency; mask anyway without it
        return frozenset()


_COUNTRY_CODES = _country_codes()


def mask_phone(number: str) -> str:
    """``+972501234567`` / ``050-123-4567`` -> ``+97250•••4567`` (country code + 2, last 4)."""
    digits = "".join(_DIGITS.findall(number))
    if not number.lstrip().startswith("+") and digits.startswith("0"):
        digits = "972" + digits[1:]  # an Israeli local number
    cc = next((digits[:n] for n in (1, 2, 3) if digits[:n] in _COUNTRY_CODES), digits[:3])
    rest = digits[len(cc):]
    if len(rest) >= 7:
        return f"+{cc}{rest[:2]}{MASK}{rest[-4:]}"
    return f"+{cc}{MASK}{rest[-2:] if len(rest) > 4 else ''}"


def _mask_text(text: str) -> str:
    return _PHONE_TEXT.sub(lambda m: mask_phone(m.group(0)), text)


def _mask_phone_field(value: str) -> str:
    masked = _mask_text(value)
    if masked != value:
        return masked
    digits = _DIGITS.findall(value)
    if len(digits) >= 7:  # something number-like we could not read: keep only its last 4 digits
        return MASK + "".join(digits[-4:])
    return value


# -- cleaning -----------------------------------------------------------------------------------


# Short strings come back line after line (event names, call sids, mark names, states): their
# cleaned form is remembered rather than run through every pattern again (a log line cost ~25 µs,
# most of it here). A pure function of the text and the cleaner's settings; bounded.
_CACHED_CHARS = 64
_CACHE_SIZE = 4096


class _Cleaner:
    def __init__(self, secrets: list[str], pii: bool) -> None:
        self.pii = pii
        self.secrets = re.compile("|".join(re.escape(s) for s in secrets)) if secrets else None
        self._seen: dict[tuple[str, bool], str] = {}

    def text(self, value: str, phone: bool = False) -> str:
        if len(value) > _CACHED_CHARS:
            return self._text(value, phone)
        key = (value, phone)
        cleaned = self._seen.get(key)
        if cleaned is None:
            if len(self._seen) >= _CACHE_SIZE:
                self._seen.clear()
            cleaned = self._seen[key] = self._text(value, phone)
        return cleaned

    def _text(self, value: str, phone: bool) -> str:
        long = len(value) > MAX_STR_CHARS
        if len(value) > SCAN_CHARS:
            value = value[:SCAN_CHARS]
        if self.secrets is not None:
            value = self.secrets.sub(REDACTED, value)
        for pattern, repl, needle in _TEXT_RULES:
            if needle in value:
                value = pattern.sub(repl, value)
        if not self.pii:
            value = _mask_phone_field(value) if phone else _mask_text(value)
        if long or len(value) > MAX_STR_CHARS:
            value = value[:MAX_STR_CHARS] + "…[truncated]"
        return value

    def value(self, value: Any, name: str = "", depth: int = 0) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if name and secret_name(name):
            return REDACTED
        if isinstance(value, str):
            return self.text(value, phone=name.lower() in PHONE_FIELDS)
        if depth >= MAX_DEPTH:
            return "…"
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for i, (key, item) in enumerate(value.items()):
                if i >= MAX_ITEMS:
                    out["…"] = f"{len(value) - MAX_ITEMS} more"
                    break
                key = self.text(str(key))[:128]
                out[key] = self.value(item, key, depth + 1)
            return out
        if isinstance(value, (list, tuple, set, frozenset)):
            items = list(value)
            out_list = [self.value(item, name, depth + 1) for item in items[:MAX_ITEMS]]
            if len(items) > MAX_ITEMS:
                out_list.append(f"… {len(items) - MAX_ITEMS} more")
            return out_list
        if isinstance(value, (bytes, bytearray, memoryview)):
            return f"<{len(value)} bytes>"
        return self.text(repr(value), phone=name.lower() in PHONE_FIELDS)

    def payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {key: self.value(item, key) for key, item in payload.items()}


_cleaner = _Cleaner([], pii=False)


def clean(payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` as it is written: secrets redacted, phones masked (unless LOG_PII), capped."""
    return _cleaner.payload(payload)


def pii_enabled() -> bool:
    return _cleaner.pii


class _JsonLineHandler(logging.Handler):
    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            payload = getattr(record, "payload", None)
            if payload is None:
                payload = {"event": "LOG", "level": record.levelname.lower(), "msg": record.getMessage()}
            line = _encoder.encode(_cleaner.payload(payload)).decode()
            self.stream.write(line + "\n")
            self.stream.flush()
        except Exception:  # a log line must never take a call down
            self.handleError(record)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def configure(level: str = "INFO", stream: Any = None, env: Mapping[str, str] | None = None) -> None:
    """Send the log to ``stream`` (stdout) at ``level``. Reads, once, from ``env`` (the process
    environment): ``LOG_PII`` (full phone numbers when "1"), the secrets to redact, and
    AGENTLOCATOR_WORKER (a worker of `serve --workers N`: every line says which)."""
    global _cleaner
    env = os.environ if env is None else env
    _cleaner = _Cleaner(environment_secrets(env), pii=_truthy(env.get(PII_ENV)))
    worker = (env.get(WORKER_ENV) or "").strip()
    _static.clear()
    if worker.isdigit():
        _static["worker"] = int(worker)
    _logger.handlers[:] = [_JsonLineHandler(stream or sys.stdout)]
    _logger.setLevel(level.upper())
    _logger.propagate = False


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event line. Unknown event names are a programming error."""
    if event not in EVENTS:
        raise ValueError(f"unknown log event {event!r}")
    if not _logger.isEnabledFor(level):
        return
    _logger.log(level, event, extra={"payload": {"event": event, **_static, **fields}})


class CallLog:
    """Binds call_sid and the call clock for one call's lines."""

    __slots__ = ("call_sid", "_now_ms")

    def __init__(self, call_sid: str, now_ms: "callable[[], float]") -> None:  # type: ignore[valid-type]
        self.call_sid = call_sid
        self._now_ms = now_ms

    def __call__(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        log_event(event, level, call_sid=self.call_sid, t=round(self._now_ms(), 1), **fields)
