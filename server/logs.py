"""Production logs: one JSON object per line on stdout, a fixed set of events.

Every call-scoped line carries ``call_sid`` and ``t`` (ms since call start, from the
session's own clock, passed in: this module reads no clocks for call time).
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec

EVENTS = frozenset(
    {
        "STATE_CHANGE", "EOU", "ASR_TEXT", "TTS_START", "TTS_END", "MARK_SENT", "MARK_ACK",
        "WS_KEEPALIVE", "WS_CLOSE", "BARGE_IN", "CALL_START", "CALL_END", "LEAD_SAVED",
        "WHATSAPP_SENT", "ERROR",
        # service-level (not per call)
        "STARTUP", "WEBHOOK", "PROVIDER_SWITCH", "PROTOCOL",
    }
)

_encoder = msgspec.json.Encoder()
_logger = logging.getLogger("agentlocator")


class _JsonLineHandler(logging.Handler):
    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        payload = getattr(record, "payload", None)
        if payload is None:
            payload = {"event": "LOG", "level": record.levelname.lower(), "msg": record.getMessage()}
        try:
            self.stream.write(_encoder.encode(payload).decode() + "\n")
            self.stream.flush()
        except Exception:  # a log line must never take a call down
            self.handleError(record)


def configure(level: str = "INFO", stream: Any = None) -> None:
    _logger.handlers[:] = [_JsonLineHandler(stream or sys.stdout)]
    _logger.setLevel(level.upper())
    _logger.propagate = False


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event line. Unknown event names are a programming error."""
    if event not in EVENTS:
        raise ValueError(f"unknown log event {event!r}")
    if not _logger.isEnabledFor(level):
        return
    _logger.log(level, event, extra={"payload": {"event": event, **fields}})


class CallLog:
    """Binds call_sid and the call clock for one call's lines."""

    __slots__ = ("call_sid", "_now_ms")

    def __init__(self, call_sid: str, now_ms: "callable[[], float]") -> None:  # type: ignore[valid-type]
        self.call_sid = call_sid
        self._now_ms = now_ms

    def __call__(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        log_event(event, level, call_sid=self.call_sid, t=round(self._now_ms(), 1), **fields)
