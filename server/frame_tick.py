"""One shared tick that reads every call's Twilio messages and sends every call's due media
frames, in one pass per period.

A pacer on its own sleeps until each frame is due: one timer (a cancel scope that expires)
and one task wake-up per call per 20 ms, which at tens of calls is a large share of the
server's CPU. A pacer whose transport can send without blocking (the raw media socket,
server.media_socket) parks here instead; the tick wakes once per period, and for each parked
pacer whose next frame is due, :meth:`server.pacer.Pacer.tick_send` sends the steady-state
frames synchronously, and the cues between them (a sentence's `mark`, a callback) in order.
Anything else — the queue empty or held, Twilio's buffer run dry, a send the kernel could not
take at once, an error — hands the pacer back to its own task, which does what it always did.

Timing: the grid is ``PERIOD_S`` on trio's clock. A frame's due time is ``anchor + n*20 ms -
lead`` and the period divides 20 ms, so every frame of a reply is late by the same amount
(under one period): frames still go out exactly 20 ms apart, and Twilio holds ``lead`` minus
at most one period of audio (hence only with a lead of at least ``MIN_LEAD_S``). The first
frames of a reply (due at once) are sent by the pacer's own task, never delayed to a tick.

Reading: each call is ~50 inbound messages a second, and a task woken for each one (trio's
epoll re-arm, a scheduler pass, the task's step, on a cold cache after every idle moment)
cost more than the work on the message. A reader whose socket can be polled
(server.media_socket) parks here too, and its messages are handed to the call synchronously
(:meth:`TickedReader.tick_read`), in one of two ways the call chooses after every read
(server.session: ``_read_plan``). ``BATCH``: its socket sits in the tick's own epoll set
(level-triggered, registered once) and each pass reads the sockets that have data — one
wake-up per period for all calls, at up to one period (20 ms) before a message is seen; for a
caller who is quiet or talking while the agent listens. While no decision could come of the
next few frames, a reader may also say until when its reads may wait (``read_at``, server.inbound:
``Inbound.frames_to_wait``): the passes before then leave its socket alone, and the first pass
after reads what came meanwhile in one go — one read and one cold start of the call's code for
a few messages. ``AT_ONCE``: its socket sits in a
second epoll set whose own fd trio watches, and a system task reads every socket with data as
soon as any has some — no delay, for while a decision may be a few frames away
(server.inbound: ``Inbound.decision_near``: a barge-in or an end of utterance the detectors
could reach within NEAR_FRAMES). Moving
between the two is an epoll registration, not a wake-up of the call's task. Anything that
needs an await (a `clear` to send, a close, control frames to answer) hands the reader back
to its task (``WAKE``), like a pacer.

The tick waits on a periodic timerfd (:class:`GridTimer`) rather than ``trio.sleep_until``
where it can (Linux, trio's system clock).
"""
from __future__ import annotations

import ctypes
import logging
import math
import os
import select
import sys
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


# What a parked reader wants after a read (TickedReader.tick_read, and the handler it calls
# for each message): its task back, reading in the pass, or reading as soon as data arrives.
WAKE, BATCH, AT_ONCE = 0, 1, 2


class TickedReader(Protocol):
    read_at: float  # BATCH: the passes before this time leave it alone

    def fileno(self) -> int:
        ...

    def tick_read(self, now: float, at_once: bool) -> int:
        """Read what arrived (by ``now``; ``at_once``: exactly then) and handle it; WAKE,
        BATCH or AT_ONCE for what it wants next."""
        ...


def _unregister(poller: select.epoll | None, fd: int) -> None:
    if poller is not None:
        try:
            poller.unregister(fd)
        except (OSError, ValueError):  # already gone with its socket
            pass


CLOCK_MONOTONIC = 1
TFD_NONBLOCK, TFD_CLOEXEC, TFD_TIMER_ABSTIME = os.O_NONBLOCK, os.O_CLOEXEC, 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _timespec(seconds: float) -> _Timespec:
    whole = math.floor(seconds)
    return _Timespec(whole, min(999_999_999, round((seconds - whole) * 1e9)))


def system_clock_offset() -> float | None:
    """On Linux under trio's own clock, its offset from CLOCK_MONOTONIC (trio's time is
    ``perf_counter()`` plus it); None elsewhere — tests' virtual clocks — where no kernel timer
    or timestamp can be put on trio's time axis."""
    clock = trio.lowlevel.current_clock()
    offset = getattr(clock, "offset", None)
    if not sys.platform.startswith("linux") or type(clock).__name__ != "SystemClock" or not isinstance(offset, float):
        return None
    return offset


class GridTimer:
    """A periodic CLOCK_MONOTONIC timerfd (Linux) on trio's clock, waited on like a socket.

    Why not ``trio.sleep_until``: each sleep is a cancel scope whose deadline expires, and
    the cancellation's bookkeeping (the Cancelled raised through the task and caught) made a
    wake-up on a 10 ms grid cost 395 µs of CPU on this 2-core VM, against 78 µs for a bare
    ``time.sleep``. A timer fd wakes the task like a readable socket. Only for trio's system
    clock, whose time is ``perf_counter()`` (CLOCK_MONOTONIC) plus an offset; tests' virtual
    clocks sleep."""

    def __init__(self, offset: float) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        fd = libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd = fd
        self._offset = offset

    @classmethod
    def for_current_run(cls) -> "GridTimer | None":
        offset = system_clock_offset()
        if offset is None:
            return None
        try:
            return cls(offset)
        except (OSError, AttributeError) as exc:  # no timerfd here: trio's sleep does the job
            log_event("ERROR", logging.WARNING, where="frame tick", error=f"no timerfd: {exc!r}"[:300])
            return None

    def arm(self, at: float, period: float) -> None:
        """Fire at trio time ``at`` and every ``period`` after it (0: disarm)."""
        mono = at - self._offset if at else 0.0
        spec = _Itimerspec(_timespec(period), _timespec(mono))
        if self._settime(self.fd, TFD_TIMER_ABSTIME if at else 0, ctypes.byref(spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    async def wait(self) -> None:
        await trio.lowlevel.wait_readable(self.fd)
        try:
            os.read(self.fd, 8)  # the expirations since the last read: we only need the wake-up
        except BlockingIOError:
            pass

    def close(self) -> None:
        trio.lowlevel.notify_closing(self.fd)
        os.close(self.fd)


class FrameTick:
    """The process's (trio run's) shared tick; see :func:`shared`."""

    def __init__(self, period_s: float = PERIOD_S) -> None:
        self.period_s = period_s
        self._parked: dict[TickedPacer, Any] = {}  # pacer -> its parked task
        self._readers: dict[int, tuple[TickedReader, Any]] = {}  # fd -> (reader, its parked task)
        self._poller: select.epoll | None = None  # their sockets, read in the pass
        self._prompt: dict[int, tuple[TickedReader, Any]] = {}  # readers served as data arrives
        self._prompt_epoll: select.epoll | None = None
        self._work = trio.Event()
        self._started = False
        self.timer: GridTimer | None = None  # set when the tick starts, where the platform has one
        self.passes = 0  # ticks that found parked pacers (for tests and the curious)

    def slot(self, t: float) -> float:
        """The first tick at or after ``t``: when a frame due at ``t`` goes out."""
        return math.ceil(t / self.period_s - 1e-9) * self.period_s

    def _start(self) -> None:
        if not self._started:
            self._started = True
            trio.lowlevel.spawn_system_task(self._run, name="agentlocator frame tick")

    async def park(self, pacer: TickedPacer, due: float) -> None:
        """Park the calling pacer task until the tick hands it back (or it is cancelled)."""
        self._start()
        task = trio.lowlevel.current_task()
        pacer.tick_due = due
        self._parked[pacer] = task
        self._work.set()

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._parked.pop(pacer, None)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def park_reader(self, reader: TickedReader, mode: int = BATCH) -> None:
        """Park the calling task: its socket is read in every pass (``BATCH``) or as soon as
        data arrives (``AT_ONCE``), ``tick_read`` handing the messages over and saying after
        each read which of the two it wants next, until it says ``WAKE`` or raises (raised in
        this task), or the task is cancelled."""
        self._start()
        fd = reader.fileno()
        stale = self._drop_reader(fd)
        if stale is not None:  # its socket was closed under it and the number reused
            trio.lowlevel.reschedule(stale[1])
        self._add_reader(fd, (reader, trio.lowlevel.current_task()), mode)

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._drop_reader(fd)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def release_reader(self, reader: TickedReader) -> None:
        """Hand a parked reader back to its task now (its socket is about to close)."""
        fd = reader.fileno()
        entry = self._readers.get(fd) or self._prompt.get(fd)
        if entry is not None and entry[0] is reader:
            self._drop_reader(fd)
            trio.lowlevel.reschedule(entry[1])

    def _add_reader(self, fd: int, entry: tuple[TickedReader, Any], mode: int) -> None:
        if mode == AT_ONCE:
            readers, poller = self._prompt, self._prompt_poller()
        else:
            readers, poller = self._readers, self._batch_poller()
            self._work.set()
        try:
            poller.register(fd, select.EPOLLIN)
        except FileExistsError:
            poller.modify(fd, select.EPOLLIN)
        readers[fd] = entry

    def _drop_reader(self, fd: int) -> tuple[TickedReader, Any] | None:
        for readers, poller in ((self._readers, self._poller), (self._prompt, self._prompt_epoll)):
            entry = readers.pop(fd, None)
            if entry is not None:
                _unregister(poller, fd)
                return entry
        return None

    def _batch_poller(self) -> select.epoll:
        if self._poller is None:
            self._poller = select.epoll()
        return self._poller

    def _prompt_poller(self) -> select.epoll:
        if self._prompt_epoll is None:
            self._prompt_epoll = select.epoll()
            trio.lowlevel.spawn_system_task(self._prompt_run, self._prompt_epoll,
                                            name="agentlocator prompt reads")
        return self._prompt_epoll

    def _serve(self, poller: select.epoll, readers: dict[int, tuple[TickedReader, Any]], now: float,
               mode: int) -> None:
        """Read every socket of one set that has data; move a reader whose handler asks for
        the other set, hand back one that asks for its task."""
        for fd, _ in poller.poll(0):
            entry = readers.get(fd)
            if entry is None:
                _unregister(poller, fd)
                continue
            reader, task = entry
            if mode == BATCH and reader.read_at > now:
                continue  # nothing it could decide comes before then: read it all together
            try:
                wants = reader.tick_read(now, mode == AT_ONCE)
            except BaseException as exc:  # noqa: BLE001 - raised in the reader's own task instead
                self._drop_reader(fd)
                trio.lowlevel.reschedule(task, outcome.Error(exc))
                continue
            if wants == WAKE:
                self._drop_reader(fd)
                trio.lowlevel.reschedule(task)
            elif wants != mode:
                self._drop_reader(fd)
                self._add_reader(fd, entry, wants)

    async def _prompt_run(self, poller: select.epoll) -> None:
        # A system task, like the tick: nothing may escape it. The epoll set's own fd is
        # readable while any of its sockets is: one wake-up serves every socket that has data.
        try:
            while True:
                await trio.lowlevel.wait_readable(poller.fileno())
                try:
                    self._serve(poller, self._prompt, trio.current_time(), AT_ONCE)
                except Exception as exc:  # noqa: BLE001 - a bug here must not stop every call
                    log_event("ERROR", logging.ERROR, where="prompt reads", error=repr(exc)[:300])
                    for fd, (_, task) in list(self._prompt.items()):
                        self._drop_reader(fd)
                        trio.lowlevel.reschedule(task)
        finally:
            self._prompt_epoll = None
            poller.close()

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
        self.timer = GridTimer.for_current_run()
        try:
            await self._loop(period, self.timer)
        finally:
            if self._poller is not None:
                self._poller.close()
            if self.timer is not None:
                self.timer.close()

    def _arm(self, timer: GridTimer, at: float, period: float) -> GridTimer | None:
        """Arm (or disarm) the timer; None if the kernel refused: trio's sleep from then on
        (an exception in this system task would end the whole server)."""
        try:
            timer.arm(at, period)
        except OSError as exc:
            log_event("ERROR", logging.WARNING, where="frame tick", error=f"timerfd: {exc!r}"[:300])
            return None
        return timer

    async def _loop(self, period: float, timer: GridTimer | None) -> None:
        armed = False
        while True:
            if not self._parked and not self._readers:
                if armed and timer is not None:
                    timer = self._arm(timer, 0.0, 0.0)
                    armed = False
                self._work = trio.Event()
                await self._work.wait()
            now = trio.current_time()
            at = math.floor(now / period + 1.0) * period
            if at <= now:  # float rounding at a grid point (0.06 / 0.02 = 2.9999...)
                at += period
            if timer is not None and not armed:
                timer = self._arm(timer, at, period)
                armed = timer is not None
            if timer is None:
                await trio.sleep_until(at)
            else:
                await timer.wait()
                # the grid point just passed (the timer never fires early; a late wake-up
                # serves the latest one)
                at = math.floor(trio.current_time() / period + 1e-6) * period
            try:
                self.passes += 1
                if self._readers:  # first: a barge-in found here clears what the pass would send
                    self._serve(self._batch_poller(), self._readers, trio.current_time(), BATCH)
                # The nominal tick time, not the moment we woke: a frame due just after a
                # grid point must go at its slot every time, not at whichever pass woke late.
                self._pass(at)
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop every call's audio
                log_event("ERROR", logging.ERROR, where="frame tick", error=repr(exc)[:300])
                for pacer in list(self._parked):
                    trio.lowlevel.reschedule(self._parked.pop(pacer))
                for fd, (_, task) in list(self._readers.items()):
                    self._drop_reader(fd)
                    trio.lowlevel.reschedule(task)


_TICK: trio.lowlevel.RunVar[FrameTick] = trio.lowlevel.RunVar("agentlocator_frame_tick")


def shared() -> FrameTick:
    """The tick of the current trio run (created on first use)."""
    try:
        return _TICK.get()
    except LookupError:
        tick = FrameTick()
        _TICK.set(tick)
        return tick
