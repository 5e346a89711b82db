"""One shared 20 ms tick that sends every call's due media frames in one pass.

A pacer on its own sleeps until each frame is due: one timer (a cancel scope that expires)
and one task wake-up per call per 20 ms, which at tens of calls is a large share of the
server's CPU. A pacer whose transport can send without blocking (the raw media socket,
server.media_socket) parks here instead; the tick wakes once per period, and for each parked
pacer whose next frame is due, :meth:`server.pacer.Pacer.tick_send` sends the steady-state
frames synchronously. Anything else — a cue or mark due, the queue empty or held, Twilio's
buffer run dry, a send the kernel could not take at once, an error — hands the pacer back to
its own task, which does what it always did.

Timing: the grid is ``PERIOD_S`` on trio's clock. A frame's due time is ``anchor + n*20 ms -
lead`` and the period divides 20 ms, so every frame of a reply is late by the same amount
(under one period): frames still go out exactly 20 ms apart, and Twilio holds ``lead`` minus
at most one period of audio (hence only with a lead of at least ``MIN_LEAD_S``). The first
frames of a reply (due at once) are sent by the pacer's own task, never delayed to a tick.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Protocol

import outcome
import trio

from telemetry.logs import log_event

PERIOD_S = 0.020
MIN_LEAD_S = 0.060  # below this the pacer keeps its own timer (a period late would eat the lead)


class TickedPacer(Protocol):
    tick_due: float

    def tick_send(self, now: float) -> float | None:
        """Send what is due by ``now``; the next due time, or None to wake the pacer's task."""
        ...


class FrameTick:
    """The process's (trio run's) shared tick; see :func:`shared`."""

    def __init__(self, period_s: float = PERIOD_S) -> None:
        self.period_s = period_s
        self._parked: dict[TickedPacer, Any] = {}  # pacer -> its parked task
        self._work = trio.Event()
        self._started = False
        self.passes = 0  # ticks that found parked pacers (for tests and the curious)

    def slot(self, t: float) -> float:
        """The first tick at or after ``t``: when a frame due at ``t`` goes out."""
        return math.ceil(t / self.period_s - 1e-9) * self.period_s

    async def park(self, pacer: TickedPacer, due: float) -> None:
        """Park the calling pacer task until the tick hands it back (or it is cancelled)."""
        if not self._started:
            self._started = True
            trio.lowlevel.spawn_system_task(self._run, name="agentlocator frame tick")
        task = trio.lowlevel.current_task()
        pacer.tick_due = due
        self._parked[pacer] = task
        self._work.set()

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._parked.pop(pacer, None)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _pass(self, now: float) -> None:
        parked = self._parked
        for pacer in list(parked):
            if pacer.tick_due > now:
                continue
            try:
                due = pacer.tick_send(now)
            except BaseException as exc:  # noqa: BLE001 - raised in the pacer's own task instead
                trio.lowlevel.reschedule(parked.pop(pacer), outcome.Error(exc))
                continue
            if due is None:
                trio.lowlevel.reschedule(parked.pop(pacer))
            else:
                pacer.tick_due = due

    async def _run(self) -> None:
        # A system task: an exception here would end the whole trio run, so none may escape.
        period = self.period_s
        while True:
            if not self._parked:
                self._work = trio.Event()
                await self._work.wait()
            now = trio.current_time()
            at = math.floor(now / period + 1.0) * period
            if at <= now:  # float rounding at a grid point (0.06 / 0.02 = 2.9999...)
                at += period
            await trio.sleep_until(at)
            try:
                self.passes += 1
                # The nominal tick time, not the moment we woke: a frame due just after a
                # grid point must go at its slot every time, not at whichever pass woke late.
                self._pass(at)
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop every call's audio
                log_event("ERROR", logging.ERROR, where="frame tick", error=repr(exc)[:300])
                for pacer in list(self._parked):
                    trio.lowlevel.reschedule(self._parked.pop(pacer))


_TICK: trio.lowlevel.RunVar[FrameTick] = trio.lowlevel.RunVar("agentlocator_frame_tick")


def shared() -> FrameTick:
    """The tick of the current trio run (created on first use)."""
    try:
        return _TICK.get()
    except LookupError:
        tick = FrameTick()
        _TICK.set(tick)
        return tick
