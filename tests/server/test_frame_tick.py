"""The shared frame tick in virtual time: the pacer's steady frames go out in the tick's pass,
20 ms apart, each late by the same amount (under one period), marks and clears as before;
a send the kernel could not take, or a failing one, hands the pacer back to its task. A call's
socket parked in the tick: its messages handed over in the pass, control frames, the close, a
handler's error and a cancellation back in the call's task. On the system clock the tick
waits on a timerfd."""
from __future__ import annotations

import json
import socket

import pytest
import trio

from native.config import TimingConfig
from server import frame_tick
from server.frame_tick import PERIOD_S, FrameTick, GridTimer
from server.media_socket import RawMediaTransport
from server.pacer import Pacer
from server.transport import TransportClosed
from server.twilio_codec import TwilioFrames

from .fakes import tone_pcm


class NowaitWire:
    """A transport whose socket takes frames at once, unless told it is full."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict, str]] = []  # (time, message, "tick" | "task")
        self.full = False
        self.drains = 0
        self.queued: list[str] = []
        self.fail: Exception | None = None
        self.full_for: str | None = None  # the socket is full when a message with this text comes

    async def send(self, text: str) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append((trio.current_time(), json.loads(text), "task"))

    def send_nowait(self, text: str) -> bool:
        if self.fail is not None:
            raise self.fail
        if self.full or (self.full_for is not None and self.full_for in text):
            self.full = True
            self.queued.append(text)
            return False
        self.sent.append((trio.current_time(), json.loads(text), "tick"))
        return True

    async def drain(self) -> None:
        self.drains += 1
        await trio.lowlevel.checkpoint()
        self.full = False
        for text in self.queued:
            self.sent.append((trio.current_time(), json.loads(text), "drained"))
        self.queued.clear()

    def media(self) -> list[tuple[float, str]]:
        return [(t, how) for t, m, how in self.sent if m["event"] == "media"]


def ticked_pacer(wire: NowaitWire, tick: FrameTick, cfg: TimingConfig | None = None) -> Pacer:
    return Pacer(cfg or TimingConfig(), wire.send, TwilioFrames("MZ"), send_nowait=wire.send_nowait,
                 drain=wire.drain, tick=tick)


async def test_steady_frames_go_out_in_the_tick_20_ms_apart(autojump_clock) -> None:
    cfg = TimingConfig()
    wire, tick = NowaitWire(), FrameTick()
    pacer = ticked_pacer(wire, tick, cfg)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        await trio.sleep(0.0071)  # off the tick's grid
        t0 = trio.current_time()
        await pacer.write_pcm16(tone_pcm(8000 * 3), pacer.epoch)  # 3 s
        pacer.cue(pacer.epoch, mark="done")
        await trio.sleep(4.0)
        nursery.cancel_scope.cancel()
    media = wire.media()
    assert len(media) == 150
    lead_frames = cfg.pacer_lead_ms // 20 + 1
    assert all(t == t0 and how == "task" for t, how in media[:lead_frames])  # the reply starts at once
    rest = media[lead_frames:]
    assert {how for _, how in rest} == {"tick"}
    late = [t - (t0 + k * 0.02 - cfg.pacer_lead_ms / 1000) for k, (t, _) in enumerate(media) if k >= lead_frames]
    assert 0 <= min(late) and max(late) < PERIOD_S and max(late) - min(late) < 1e-6  # the same lateness for all
    assert all(abs((b - a) - 0.02) < 1e-6 for (a, _), (b, _) in zip(rest, rest[1:]))
    assert [m["event"] for _, m, _ in wire.sent][-1] == "mark"  # the mark after its frames, by the task
    assert tick.passes >= 140


async def test_clear_while_parked_stops_the_frames(autojump_clock) -> None:
    wire, tick = NowaitWire(), FrameTick()
    pacer = ticked_pacer(wire, tick)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        await pacer.write_pcm16(tone_pcm(8000 * 2), pacer.epoch)
        await trio.sleep(0.5)
        before = len(wire.media())
        pacer.clear()
        await trio.sleep(1.0)
        assert len(wire.media()) == before  # nothing of the old reply after the clear
        t1 = trio.current_time()
        await pacer.write_pcm16(tone_pcm(800), pacer.epoch)  # a new reply starts at once
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    assert [t for t, _ in wire.media()][before] == t1


async def test_a_full_socket_hands_back_to_the_task_which_drains(autojump_clock) -> None:
    wire, tick = NowaitWire(), FrameTick()
    pacer = ticked_pacer(wire, tick)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        await pacer.write_pcm16(tone_pcm(8000), pacer.epoch)
        await trio.sleep(0.3)
        wire.full = True
        await trio.sleep(0.05)
        assert wire.drains == 1 and not wire.queued
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert len(wire.media()) == 50 and pacer.frames_sent == 50
    assert [how for _, how in wire.media()].count("drained") == 1


async def test_a_failing_send_raises_in_the_pacer_task(autojump_clock) -> None:
    wire, tick = NowaitWire(), FrameTick()
    pacer = ticked_pacer(wire, tick)
    with pytest.raises(BaseExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pacer.run)
            await pacer.write_pcm16(tone_pcm(8000), pacer.epoch)
            await trio.sleep(0.3)
            wire.fail = TransportClosed(1006, "peer gone")
            await trio.sleep(1.0)
    assert caught.value.subgroup(TransportClosed) is not None  # raised in the pacer's own task
    assert not tick._parked  # noqa: SLF001 - nothing left parked


async def test_a_short_lead_keeps_the_pacers_own_timer(autojump_clock) -> None:
    cfg = TimingConfig(pacer_lead_ms=40)
    wire, tick = NowaitWire(), FrameTick()
    pacer = ticked_pacer(wire, tick, cfg)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        await pacer.write_pcm16(tone_pcm(1600), pacer.epoch)
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    assert {how for _, how in wire.media()} == {"task"} and tick.passes == 0


async def test_a_cancelled_pacer_leaves_the_tick(autojump_clock) -> None:
    wire, tick = NowaitWire(), FrameTick()
    pacer = ticked_pacer(wire, tick)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        await pacer.write_pcm16(tone_pcm(8000), pacer.epoch)
        await trio.sleep(0.3)
        assert pacer in tick._parked  # noqa: SLF001
        nursery.cancel_scope.cancel()
    assert not tick._parked  # noqa: SLF001


# -- readers: the call's socket read in the tick's pass ----------------------------------------

async def _raw_pair() -> tuple[RawMediaTransport, trio.socket.SocketType]:
    ours, peer = trio.socket.socketpair()
    transport = RawMediaTransport(trio.SocketStream(ours), 64 * 1024)
    return transport, peer


async def test_a_parked_reader_gets_its_messages_in_the_pass_without_its_task(autojump_clock) -> None:
    from .test_media_socket import client_frame, parse_server_frame

    transport, peer = await _raw_pair()
    tick = frame_tick.shared()
    got: list[tuple[str, float]] = []

    def handle(text: str, now: float, exact: bool) -> int:
        got.append((text, now))
        assert not exact  # read in the pass: its time is the pass's
        return frame_tick.WAKE if text == "stop here" else frame_tick.BATCH

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.hand_over, b"")
        await trio.sleep(0.001)
        await peer.send(client_frame(1, b"one") + client_frame(1, b"two"))
        returned = trio.Event()

        async def reader() -> None:
            await transport.receive_in_tick(handle, frame_tick.BATCH)
            returned.set()

        nursery.start_soon(reader)
        await trio.sleep(0.05)
        assert [t for t, _ in got] == ["one", "two"] and not returned.is_set()
        assert all(abs(now / PERIOD_S - round(now / PERIOD_S)) < 1e-6 for _, now in got)  # in a pass
        await peer.send(client_frame(1, b"stop here") + client_frame(1, b"after"))
        await trio.sleep(0.05)
        assert returned.is_set() and [t for t, _ in got][-1] == "stop here"
        assert await transport.receive() == "after"  # what the handler did not take stays, in order
        assert not tick._readers  # noqa: SLF001 - handed back: off the tick's epoll set
        # a ping: the tick hands back, receive() answers it
        await peer.send(client_frame(9, b"hi"))
        await transport.receive_in_tick(handle, frame_tick.BATCH)
        with trio.move_on_after(0.1):
            await transport.receive()
        opcode, payload = parse_server_frame(await peer.recv(100))
        assert (opcode, payload) == (0xA, b"hi")
        # the peer's close: back to the task, and receive() reports it
        await peer.send(client_frame(8, (1000).to_bytes(2, "big")))
        await transport.receive_in_tick(handle, frame_tick.BATCH)
        with pytest.raises(TransportClosed) as closed:
            await transport.receive()
        assert closed.value.code == 1000
    peer.close()


async def test_a_reader_at_once_gets_each_message_on_arrival_and_moves_between_sets_without_its_task(
        autojump_clock) -> None:
    from .test_media_socket import client_frame

    transport, peer = await _raw_pair()
    tick = frame_tick.shared()
    got: list[tuple[str, float, bool]] = []
    wants = {"near": frame_tick.AT_ONCE, "quiet": frame_tick.BATCH, "stop": frame_tick.WAKE}

    def handle(text: str, now: float, exact: bool) -> int:
        got.append((text, now, exact))
        return wants.get(text, frame_tick.AT_ONCE if exact else frame_tick.BATCH)

    def on_grid(now: float) -> bool:
        return abs(now / PERIOD_S - round(now / PERIOD_S)) < 1e-6

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.hand_over, b"")
        await trio.sleep(0.001)
        returned = trio.Event()

        async def reader() -> None:
            await transport.receive_in_tick(handle, frame_tick.AT_ONCE)
            returned.set()

        nursery.start_soon(reader)
        await trio.sleep(0.0063)  # between two passes
        sent_at = trio.current_time()
        await peer.send(client_frame(1, b"one"))
        await trio.sleep(0.001)
        assert got == [("one", sent_at, True)] and not on_grid(sent_at)  # at once, at its arrival time
        assert set(tick._prompt) == {transport.fileno()} and not tick._readers  # noqa: SLF001
        await peer.send(client_frame(1, b"quiet"))  # the handler asks for the pass from now on
        await trio.sleep(0.001)
        assert set(tick._readers) == {transport.fileno()} and not tick._prompt  # noqa: SLF001
        await trio.sleep(0.0033)
        await peer.send(client_frame(1, b"two"))
        await trio.sleep(0.03)
        text, now, exact = got[-1]
        assert text == "two" and not exact and on_grid(now) and now > sent_at
        await peer.send(client_frame(1, b"near"))  # and back to reading on arrival
        await trio.sleep(0.03)
        assert set(tick._prompt) == {transport.fileno()}  # noqa: SLF001
        await trio.sleep(0.0047)
        at = trio.current_time()
        await peer.send(client_frame(1, b"three"))
        await trio.sleep(0.001)
        assert got[-1] == ("three", at, True)
        assert not returned.is_set()  # all of it without the reader's task
        await peer.send(client_frame(1, b"stop") + client_frame(1, b"after"))
        await trio.sleep(0.001)
        assert returned.is_set() and not tick._prompt and not tick._readers  # noqa: SLF001
        assert await transport.receive() == "after"
        await transport.close()
    peer.close()


async def test_a_reader_that_may_wait_is_left_alone_until_then_and_read_all_together(autojump_clock) -> None:
    """``plan``: asked once per read (not per message), and at the start; the passes before the
    time it gives leave the socket alone; the first pass after reads everything that came
    meanwhile, in order, in one read."""
    from .test_media_socket import client_frame

    transport, peer = await _raw_pair()
    got: list[tuple[str, float]] = []
    asked: list[float] = []
    wait_s = [0.05]  # how long the reads may wait after each read (0: the next pass)

    def handle(text: str, now: float, exact: bool) -> int:
        got.append((text, now))
        return frame_tick.BATCH

    def plan() -> tuple[int, float]:
        asked.append(trio.current_time())
        return frame_tick.BATCH, trio.current_time() + wait_s[0] if wait_s[0] else 0.0

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.hand_over, b"")
        await trio.sleep(0.001)
        nursery.start_soon(transport.receive_in_tick, handle, frame_tick.AT_ONCE, plan)  # the plan decides
        await trio.sleep(0.0005)
        assert len(asked) == 1 and transport.read_at == asked[0] + 0.05  # asked at the start too
        start = asked[0]
        for k in range(3):  # a message every 15 ms, over two passes: none read before the wait is over
            await peer.send(client_frame(1, b"m%d" % k))
            await trio.sleep(0.015)
        assert not got
        await trio.sleep(0.02)
        assert [t for t, _ in got] == ["m0", "m1", "m2"] and len(asked) == 2  # one read, in order
        read = got[0][1]
        assert all(now == read for _, now in got) and start + 0.05 <= read < start + 0.05 + PERIOD_S
        wait_s[0] = 0.0
        await peer.send(client_frame(1, b"m3"))  # asked after that read: 50 ms more
        await trio.sleep(0.03)
        assert len(got) == 3
        await trio.sleep(0.04)
        assert [t for t, _ in got][-1] == "m3" and transport.read_at == 0.0
        await peer.send(client_frame(1, b"m4"))  # from then on, in the next pass
        await trio.sleep(PERIOD_S + 0.001)
        assert [t for t, _ in got][-1] == "m4"
        nursery.cancel_scope.cancel()
    peer.close()


@pytest.mark.parametrize("mode", [frame_tick.BATCH, frame_tick.AT_ONCE], ids=["in the pass", "at once"])
async def test_a_handler_error_is_raised_in_the_readers_task_and_cancel_leaves_the_tick(autojump_clock, mode) -> None:
    from .test_media_socket import client_frame

    transport, peer = await _raw_pair()
    tick = frame_tick.shared()

    def handle(text: str, now: float, exact: bool) -> int:
        raise ValueError(text)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.hand_over, b"")
        await trio.sleep(0.001)
        await peer.send(client_frame(1, b"bad"))
        with pytest.raises(ValueError, match="bad"):
            await transport.receive_in_tick(handle, mode)
        assert not tick._readers and not tick._prompt  # noqa: SLF001
        with trio.move_on_after(0.1):
            await transport.receive_in_tick(lambda text, now, exact: mode, mode)
        assert not tick._readers and not tick._prompt  # noqa: SLF001 - the cancelled reader left the epoll set
        await transport.close()
    peer.close()


def test_the_tick_waits_on_a_timerfd_on_the_system_clock() -> None:
    """Real time: the passes come on the 20 ms grid, never before a grid point."""
    seen: list[tuple[float, float]] = []

    class Probe:
        tick_due = 0.0

        def tick_send(self, now: float) -> float | None:
            seen.append((now, trio.current_time()))
            return now + PERIOD_S

    async def main() -> GridTimer | None:
        tick = FrameTick()
        with trio.move_on_after(0.25):
            await tick.park(Probe(), 0.0)
        return tick.timer

    timer = trio.run(main)
    assert timer is not None
    assert len(seen) >= 6
    grid = [now / PERIOD_S for now, _ in seen]
    assert all(abs(g - round(g)) < 1e-6 for g in grid)  # nominal times on the grid
    steps = [round(b - a) for a, b in zip(grid, grid[1:])]
    assert all(k >= 1 for k in steps) and steps.count(1) >= len(steps) // 2  # a grid point per pass
    assert all(woke >= now - 1e-6 for now, woke in seen)  # the timer never fires early


async def test_marks_between_frames_go_out_in_the_pass_right_after_their_frame(autojump_clock) -> None:
    wire, tick = NowaitWire(), FrameTick()
    pacer = ticked_pacer(wire, tick)
    called: list[tuple[str, float, int]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        for k in range(3):  # three sentences of 0.5 s, a mark after each
            await pacer.write_pcm16(tone_pcm(4000), pacer.epoch)
            pacer.cue(pacer.epoch, mark=f"s{k}",
                      callback=lambda now, k=k: called.append((f"s{k}", now, pacer.frames_sent)))
        pacer.cue(pacer.epoch, callback=lambda now: called.append(("end", now, pacer.frames_sent)))
        wire.full_for = '"s2"'  # the last mark finds the socket full: queued in order, the task drains
        await trio.sleep(2.5)
        nursery.cancel_scope.cancel()
    events = [(m["event"], m.get("mark", {}).get("name"), how) for _, m, how in wire.sent]
    marks = [i for i, e in enumerate(events) if e[0] == "mark"]
    assert [events[i][1] for i in marks] == ["s0", "s1", "s2"]
    assert [sum(1 for e in events[:i] if e[0] == "media") for i in marks] == [25, 50, 75]  # right after its frames
    assert [events[i][2] for i in marks[:2]] == ["tick", "tick"] and events[marks[2]][2] == "drained"
    assert [(name, n) for name, _, n in called] == [("s0", 25), ("s1", 50), ("s2", 75), ("end", 75)]
    assert all(abs(now / PERIOD_S - round(now / PERIOD_S)) < 1e-6 for _, now, _ in called[:2])  # in a pass
    assert wire.drains == 1 and pacer.marks_sent == 3


def test_a_timerfd_the_kernel_refuses_falls_back_to_trios_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in the tick (a system task) would end the whole server: a refused
    timerfd_settime is logged and the tick sleeps instead."""
    def refuse(self: GridTimer, at: float, period: float) -> None:
        raise OSError(22, "timerfd_settime failed")

    monkeypatch.setattr(GridTimer, "arm", refuse)
    seen: list[float] = []

    class Probe:
        tick_due = 0.0

        def tick_send(self, now: float) -> float | None:
            seen.append(now)
            return now + PERIOD_S

    async def main() -> None:
        tick = FrameTick()
        with trio.move_on_after(0.2):
            await tick.park(Probe(), 0.0)

    trio.run(main)
    assert len(seen) >= 4 and all(abs(n / PERIOD_S - round(n / PERIOD_S)) < 1e-6 for n in seen)


def _tcp_pair() -> tuple[RawMediaTransport, "socket.socket"]:
    """Our transport on the accepted side of a real loopback TCP connection, and the peer's
    (blocking) socket: kernel receive timestamps need TCP, not a socketpair."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(listener.getsockname())
    ours, _ = listener.accept()
    listener.close()
    ours.setblocking(False)
    return RawMediaTransport(trio.SocketStream(trio.socket.from_stdlib_socket(ours)), 64 * 1024), peer


def test_reads_in_the_pass_carry_the_kernels_arrival_time_on_the_system_clock() -> None:
    """Real time, real TCP: a message read in the tick's pass comes with the time the kernel
    stamped its last packet (not the pass's time) when that packet ended it; a message with
    another behind it in the same read, or a read that ends mid-message, gets the pass's time
    and is not called exact."""
    from .test_media_socket import client_frame

    got: list[tuple[str, float, bool]] = []

    def handle(text: str, now: float, exact: bool) -> int:
        got.append((text, now, exact))
        return frame_tick.BATCH

    async def main() -> list[tuple[str, float, float]]:
        transport, peer = _tcp_pair()
        assert transport.stamps_arrivals
        sent: list[tuple[str, float, float]] = []

        async def send(data: bytes, label: str) -> None:
            before = trio.current_time()
            peer.sendall(data)
            sent.append((label, before, trio.current_time()))
            await trio.sleep(0.05)  # at least two passes: read by then

        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport.hand_over, b"")
            await trio.sleep(0.001)
            nursery.start_soon(transport.receive_in_tick, handle, frame_tick.BATCH)
            await trio.sleep(0.001)
            await send(client_frame(1, b"one"), "one")
            await send(client_frame(1, b"two") + client_frame(1, b"three"), "two+three")
            b = client_frame(1, b"five")
            await send(client_frame(1, b"four") + b[:3], "four+part")
            await send(b[3:], "rest of five")
            nursery.cancel_scope.cancel()
        peer.close()
        return sent

    sent = trio.run(main)
    assert [t for t, _, _ in got] == ["one", "two", "three", "four", "five"]
    by_text = {t: (now, exact) for t, now, exact in got}
    windows = {label: (before, after) for label, before, after in sent}
    for text, label in (("one", "one"), ("three", "two+three"), ("five", "rest of five")):
        now, exact = by_text[text]
        before, after = windows[label]
        assert exact and before - 0.001 <= now <= after + 0.001, (text, now, before, after)
    for text, label in (("two", "two+three"), ("four", "four+part")):  # not the last of its read /
        now, exact = by_text[text]                                         # the read ended mid-message
        assert not exact and now >= windows[label][1]  # the pass's time, after the send


def test_an_arrival_stamp_from_a_stepped_wall_clock_is_not_believed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel stamps reads on the wall clock: if that clock is stepped (NTP, a VM resumed),
    the stamp's age is nonsense and the message goes as read in the pass, not as exact."""
    import time as real_time
    from types import SimpleNamespace

    from server import media_socket

    from .test_media_socket import client_frame

    got: list[tuple[str, bool]] = []
    step = [0.0]
    monkeypatch.setattr(media_socket, "time", SimpleNamespace(time=lambda: real_time.time() + step[0]))

    def handle(text: str, now: float, exact: bool) -> int:
        got.append((text, exact))
        return frame_tick.BATCH

    async def main() -> None:
        transport, peer = _tcp_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport.hand_over, b"")
            await trio.sleep(0.001)
            nursery.start_soon(transport.receive_in_tick, handle, frame_tick.BATCH)
            await trio.sleep(0.001)
            for text, jump in (("before", 0.0), ("stepped ahead", 30.0), ("stepped back", -30.0), ("after", 0.0)):
                step[0] = jump
                peer.sendall(client_frame(1, text.encode()))
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        peer.close()

    trio.run(main)
    assert got == [("before", True), ("stepped ahead", False), ("stepped back", False), ("after", True)]
