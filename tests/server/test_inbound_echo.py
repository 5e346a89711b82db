"""The shell's side of the echo guard: agent frames reported at their playback stream time."""
from __future__ import annotations

from native.config import TimingConfig
from server import turn as T
from server.inbound import Inbound

CFG = TimingConfig()


def test_agent_frames_a_hair_off_the_grid_each_keep_their_own_slot() -> None:
    # the pacer plays every 20 ms; the stream clock's offset creeps by 0.02 ms a frame and snaps
    # back, so play times land on either side of the grid (x.98, then x + 20.00); floored, two of
    # them shared a slot (the second replaced the first) and the slot before stayed empty
    inbound = Inbound(CFG, T.TurnMachine(CFG, "en-US"), lambda ev: None, lambda pcm: None, lambda: 0)
    starts = [1000.0, 1019.98, 1040.0, 1059.98, 1079.98, 1100.0]
    for k, ms in enumerate(starts):
        inbound.agent_frame(100.0 * (k + 1), ms)
    echo = inbound.echo
    # the frame at 1000 + 20 k echoes into the inbound frame 60 ms later (the shortest delay)
    # only from its own slot: each slot holds its frame
    got = [echo.far(1000 + 20 * k + 60) for k in range(len(starts))]
    assert got[0] == 100.0  # nothing played before 1000: only the frame at 1000 can reach 1060
    # the frames at 1000..1000+20k are all in reach of 1060+20k: the loudest is the k-th (100 (k+1))
    assert got == [100.0 * (k + 1) for k in range(len(starts))]
    assert echo.far(1040) == 0.0  # nothing reaches an inbound frame before 60 ms


def test_a_decision_is_near_only_a_few_frames_before_it_could_come() -> None:
    """When the session may let the shared tick batch the caller's frames (server.frame_tick):
    not in the first second (the stream clock settles) unless the transport stamps arrivals,
    nor within NEAR_FRAMES frames of where a barge-in or an end of utterance could come."""
    from types import SimpleNamespace

    from server.inbound import CLOCK_SETTLE_MS, NEAR_FRAMES

    machine = SimpleNamespace(state=T.State.LISTENING, calibrated=True, audible_ms=0, deadline_ms=10**9)
    inbound = Inbound(CFG, machine, lambda ev: None, lambda pcm: None, lambda: 0)  # type: ignore[arg-type]
    now = [0.0]

    def frames(rms: float, ms: int) -> list[bool]:
        near = []
        for _ in range(ms // 20):
            now[0] += 0.02
            inbound.frame(rms, now[0])
            near.append(inbound.decision_near or inbound.settling)
        return near

    assert all(frames(5.0, CLOCK_SETTLE_MS))  # settling: exact arrival times wanted
    assert not any(frames(5.0, 1000)) and not inbound.settling  # quiet line, agent silent: batched
    talk = frames(3000.0, 1000)
    assert inbound.voice and not talk[-1]  # the caller talks, agent silent: no decision per frame
    after = []  # silence after speech, frame by frame until the end of utterance (a sharp drop:
    while inbound.eou.in_utterance and len(after) < 100:  # 200 ms after the voice)
        after += frames(5.0, 20)
    assert 8 <= len(after) <= 14 and not inbound.eou.in_utterance and not inbound.decision_near  # it ended
    # batched while the end is still far, read as they arrive the last NEAR_FRAMES before it
    assert not any(after[:3]) and all(after[-1 - NEAR_FRAMES : -1])
    assert not any(frames(5.0, 2000))  # the line quiet again
    machine.state = T.State.SPEAKING
    inbound.barge.arm(inbound.t)  # the agent audible from the next frame (the session arms it)
    assert not any(frames(5.0, 400))  # the agent speaks, the caller is quiet
    over = frames(3000.0, 40)  # a short "mm" over the agent: far from a barge-in
    over += frames(5.0, 100)
    assert not any(over) and not inbound.barge.fired
    over = []  # then the caller talks over the agent, frame by frame until the barge-in
    while not inbound.barge.fired and len(over) < 100:
        over += frames(3000.0, 20)
    assert inbound.barge.fired and 8 <= len(over) <= 14
    # batched while a barge-in is still out of reach, read as they arrive the last NEAR_FRAMES
    # frames before it, and not after it (nothing left to interrupt)
    assert not any(over[:3]) and all(over[-1 - NEAR_FRAMES : -1]) and not over[-1]


def test_reads_wait_only_while_no_decision_could_come_of_them() -> None:
    """``frames_to_wait``: how many frames the shared tick may leave unread and read together
    later. Whatever it said at a frame, the next barge-in or end of utterance comes more than
    that many frames plus NEAR_FRAMES later (so the read after the wait still sees it coming,
    and reads it as it arrives); it waits while the agent speaks to a quiet caller and while the
    caller talks; never in the first second, while a reply is prepared, in the window where
    the caller's first voice makes the agent yield, nor up to the turn machine's deadline."""
    from types import SimpleNamespace

    from server.inbound import CLOCK_SETTLE_MS, MAX_WAIT_FRAMES, NEAR_FRAMES

    machine = SimpleNamespace(state=T.State.LISTENING, calibrated=True, audible_ms=None, deadline_ms=T.NEVER)
    decided: list[int] = []  # frames a decision came on

    def dispatch(event: object) -> None:
        if type(event) in (T.BargeIn, T.EndOfUtterance) or (
            type(event) is T.VoiceStart and machine.state is T.State.SPEAKING
            and event.run_start_ms < machine.audible_ms + CFG.yield_window_ms  # type: ignore[attr-defined]
        ):  # (the last: a collision, the agent yields to the caller's first words)
            decided.append(inbound.frame_t // 20)

    inbound = Inbound(CFG, machine, dispatch, lambda pcm: None, lambda: 0)  # type: ignore[arg-type]
    waits: list[int] = []  # frames_to_wait after each frame

    def frames(rms: float, ms: int) -> list[int]:
        got = []
        for _ in range(ms // 20):
            inbound.frame(rms, inbound.t / 1000.0 + 0.06)  # on time, 60 ms after it was spoken
            got.append(inbound.frames_to_wait())
        waits.extend(got)
        return got

    assert not any(frames(5.0, CLOCK_SETTLE_MS))  # settling: every frame in the pass after it
    quiet = frames(5.0, 1000)
    talk = frames(3000.0, 1600)  # the caller talks over 1.5 s, then stops: an end of utterance
    while inbound.eou.in_utterance:
        frames(5.0, 20)
    assert set(quiet) == set(talk[:20]) == {MAX_WAIT_FRAMES}  # far from any end
    machine.state = T.State.PROCESSING
    assert not any(frames(5.0, 400))  # a reply prepared: the caller's first voice holds it
    machine.state, machine.audible_ms = T.State.SPEAKING, inbound.t
    inbound.barge.arm(inbound.t)
    window = frames(5.0, CFG.yield_window_ms + CFG.hysteresis_ms)
    assert not any(window[:-1])  # voice now is a collision: the agent yields at once
    speaking = frames(5.0, 1000)
    assert speaking[:-1] and set(speaking) == {MAX_WAIT_FRAMES}  # the agent speaks, the caller quiet
    machine.deadline_ms = inbound.t + 140  # something due in 7 frames (e.g. the goodbye's linger)
    assert frames(5.0, 200) == [2, 1] + [0] * 8  # 6 frames to go after the first: 6 - NEAR_FRAMES - 1
    machine.deadline_ms = T.NEVER
    while not inbound.barge.fired:  # the caller talks over the agent until it yields
        frames(3000.0, 20)
    assert len(decided) == 2 and decided[-1] == len(waits) - 1
    machine.audible_ms = inbound.t  # the next reply: the caller's voice starts at the window's edge
    inbound.barge.arm(inbound.t)
    frames(5.0, CFG.yield_window_ms - 20)
    frames(3000.0, 200)
    assert len(decided) == 3  # a collision
    for i in decided:
        for j, k in enumerate(waits[:i]):
            assert not k or i - j > k + NEAR_FRAMES, f"frame {j} let {k} frames wait; a decision came {i - j} frames later"
