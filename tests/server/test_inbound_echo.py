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


def test_a_decision_is_near_while_the_caller_talks_over_the_agent_or_has_just_stopped() -> None:
    """When the session may let the shared tick batch the caller's frames (server.frame_tick):
    never in the first second (the stream clock settles), nor while a barge-in or an end of
    utterance may be a frame away."""
    from types import SimpleNamespace

    from server.inbound import CLOCK_SETTLE_MS, EOU_NEAR_FRAMES, SPEECH_GAP_MS

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
    # batched while the end is still far, read as they arrive the last EOU_NEAR_FRAMES before it
    assert not any(after[:3]) and all(after[-1 - EOU_NEAR_FRAMES : -1])
    assert not any(frames(5.0, 2000))  # the line quiet again
    machine.state = T.State.SPEAKING
    assert not inbound.decision_near  # the agent speaks, the caller is quiet
    assert all(frames(3000.0, 200)[2:])  # the caller's voice over the agent: a barge-in may come
    gap = frames(5.0, SPEECH_GAP_MS + 100)
    assert gap[1] and not gap[-1]  # a gap in it still counts, a pause longer than that does not
