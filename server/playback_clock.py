"""One time axis for both directions of a call: inbound *stream time* (ms).

Twilio stamps the caller's audio on its own clock and plays ours on arrival; we see both
through a network that can stall and then deliver a lump of frames at once. Barge-in,
grace window, echo and halt time all compare "when the caller said it" with "when the
caller heard it", so both must be on one axis. :class:`StreamClock` maps the call's
monotonic clock onto stream time with the least-delayed arrivals: a frame that arrives late
(a burst after a hiccup) says nothing about when it was spoken, the earliest ones do.

Pure: the shell passes arrival times in; nothing here reads a clock.
"""
from __future__ import annotations

# The offset is a running minimum of (arrival - stream time). It creeps up by this much per
# frame (1 ms per second of audio) so that a lasting change of path delay, or two clocks that
# drift, is followed within a minute, while a burst (late frames) never moves it.
CREEP_MS_PER_FRAME = 0.02


class StreamClock:
    def __init__(self) -> None:
        self.offset_ms: float | None = None  # arrival clock (ms) minus stream time, least delayed

    def arrived(self, stream_ms: int, now_s: float) -> None:
        """The inbound audio up to ``stream_ms`` (the END of the frame just received: it cannot
        have been sent before it was spoken) arrived at monotonic time ``now_s``."""
        lag = now_s * 1000.0 - stream_ms
        offset = self.offset_ms
        if offset is None or lag < offset:
            self.offset_ms = lag
        else:
            self.offset_ms = offset + CREEP_MS_PER_FRAME

    def stream_ms(self, now_s: float) -> float:
        """The stream time that corresponds to monotonic time ``now_s``."""
        return now_s * 1000.0 - (self.offset_ms or 0.0)

    def clock_s(self, stream_ms: float) -> float:
        """The monotonic time that corresponds to stream time ``stream_ms``."""
        return (stream_ms + (self.offset_ms or 0.0)) / 1000.0
