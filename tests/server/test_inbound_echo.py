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
