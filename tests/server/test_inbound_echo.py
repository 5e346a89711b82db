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
