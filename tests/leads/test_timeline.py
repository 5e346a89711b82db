"""The timeline comes from the session's log events: only call events, flushed with writes."""
from __future__ import annotations

import datetime as dt
import io
import logging

from leads import queries
from leads.base import CallInfo
from leads.store import SqlRecorder, Store
from leads.timeline import attach_timeline
from telemetry import logs
from telemetry.logs import CallLog, log_event


async def test_log_events_become_the_call_timeline(sqlite_url: str) -> None:
    logs.configure(stream=io.StringIO())
    store = Store.open(sqlite_url)
    rec = SqlRecorder(store)
    tap = attach_timeline(rec)
    try:
        await rec.call_started(CallInfo("CA00000000000000000000000000000001", "MZ00000000000000000000000000000001", "+972501234567", "+97233001122", dt.datetime.now(dt.timezone.utc)))
        clock = iter([14.1, 582.5, 2322.6, 2400.0, 2401.0, 9000.0]).__next__
        log = CallLog("CA00000000000000000000000000000001", clock)
        log("STATE_CHANGE", from_state="LISTENING", to_state="PROCESSING", cause="CallStarted")
        log("STATE_CHANGE", from_state="SPEAKING", to_state="LISTENING", cause="PlaybackDone")
        log("EOU", onset_ms=1040, eou_ms=2320, length_ms=1280, silence_ms=160, forced=False)
        log("ASR_TEXT", text="א" * 500, latency_ms=51.3)
        log("CALL_END", reason="agent_hangup")  # not a timeline event
        log_event("STARTUP", note="service line, no call")
        log("BARGE_IN", logging.DEBUG, halt_ms=120)  # below the log level: not seen
        assert queries.call_timeline(store, "CA00000000000000000000000000000001") == []  # buffered until the next write
        await rec.transcript_turn("CA00000000000000000000000000000001", "caller", "שלום", 1040, 2320, True)
        events = queries.call_timeline(store, "CA00000000000000000000000000000001")
        assert [(e["t_ms"], e["kind"]) for e in events] == [
            (14, "STATE_CHANGE"), (582, "STATE_CHANGE"), (2322, "EOU"), (2400, "ASR_TEXT")]
        assert events[0]["detail"] == {"from_state": "LISTENING", "to_state": "PROCESSING", "cause": "CallStarted"}
        assert len(events[3]["detail"]["text"]) == 200
    finally:
        logging.getLogger("agentlocator").removeHandler(tap)
        store.close()
