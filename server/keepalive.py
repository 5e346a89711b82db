"""When to send a heartbeat mark or idle-guard silence, sans-IO (times in seconds, passed in).

Twilio and the proxies between us drop a websocket that carries nothing for long; while the
agent is silent, a `mark` every ``heartbeat_ms`` keeps the line warm, and if no media went
out for ``idle_guard_ms`` a short μ-law silence goes too (some carriers only count audio).
"""
from __future__ import annotations

from native.config import TimingConfig


class Keepalive:
    __slots__ = ("_beat_s", "_guard_s", "last_media", "last_beat")

    def __init__(self, config: TimingConfig, now: float) -> None:
        self._beat_s = config.heartbeat_ms / 1000.0
        self._guard_s = config.idle_guard_ms / 1000.0
        self.last_media = now
        self.last_beat = now

    def media_sent(self, now: float) -> None:
        self.last_media = now

    def next_due(self) -> float:
        """The next time something must go out if no media goes out before it."""
        return min(max(self.last_media, self.last_beat) + self._beat_s, self.last_media + self._guard_s)

    def due(self, now: float) -> tuple[bool, bool]:
        """(send a heartbeat mark, send idle silence) at ``now``; records what it asks for."""
        silence = now >= self.last_media + self._guard_s
        # The guard's silence is followed by a mark too, so marks stay every <= heartbeat_ms.
        beat = silence or now >= max(self.last_media, self.last_beat) + self._beat_s
        if beat:
            self.last_beat = now
        if silence:
            # The silence is queued now and paced out next; count it as media from here so
            # the guard does not fire again while it drains.
            self.last_media = now
        return beat, silence
