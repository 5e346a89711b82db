"""The call timeline for the dashboard, taken from the session's own log events.

The session already logs every state change, EOU, ASR result, TTS start/end, mark and
barge-in with its ``call_sid`` and call-clock ``t`` (telemetry/logs.py). This handler hands
those lines to the recorder's :meth:`~leads.base.CallRecorder.timeline_event`, so the
timeline needs nothing more from the session. It sees what the log level lets through
(INFO, the default, has them all).
"""
from __future__ import annotations

import logging

from leads.base import CallRecorder

TIMELINE_EVENTS = frozenset({
    "STATE_CHANGE", "EOU", "ASR_TEXT", "TTS_START", "TTS_END", "MARK_SENT", "MARK_ACK",
    "WS_KEEPALIVE", "BARGE_IN", "WS_CLOSE",
})
_TEXT_LIMIT = 200


class TimelineTap(logging.Handler):
    def __init__(self, recorder: CallRecorder) -> None:
        super().__init__()
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        payload = getattr(record, "payload", None)
        if not payload or payload.get("event") not in TIMELINE_EVENTS:
            return
        call_sid, t_ms = payload.get("call_sid"), payload.get("t")
        if not call_sid or t_ms is None:
            return
        detail = {
            k: (v[:_TEXT_LIMIT] if isinstance(v, str) else v)
            for k, v in payload.items() if k not in ("event", "call_sid", "t")
        }
        self.recorder.timeline_event(call_sid, t_ms, payload["event"], **detail)


def attach_timeline(recorder: CallRecorder, logger_name: str = "agentlocator") -> TimelineTap:
    """Start feeding ``recorder`` from the log (after telemetry.logs.configure, which resets handlers)."""
    tap = TimelineTap(recorder)
    logging.getLogger(logger_name).addHandler(tap)
    return tap
