"""The caller-behaviour corpus: every scenario is one call through the real session, in
virtual time, with the real RuleBrain, judged from the caller's side (judge.py)."""
from __future__ import annotations

import pytest

from .harness import run_scenario
from .judge import judge
from .scenarios import SCENARIOS

# Known misses, measured and explained (README, behaviour table). Strict: the day one of them
# passes, this list has to be updated.
KNOWN_MISSES = {
    "ie_en_bursts": "double talk at the echo gate's edge: the caller's first frames are 13 dB under the agent on a "
    "-18 dB echo line, indistinguishable from echo by energy alone — the agent's loud frame is the one at the echo's "
    "(learned) delay, so the caller is only ~5 dB over its echo, under the 6 dB margin; the halt comes ~60 ms late",
    "cov_he_cough": "resume 613 ms after the cough (target 600): 120 ms of quiet + the 400 ms ASR final this "
    "scenario assumes + the TTS onset ramp",
}


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(sc, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[sc.name]))
     if sc.name in KNOWN_MISSES else sc for sc in SCENARIOS],
    ids=[sc.name for sc in SCENARIOS],
)
async def test_caller_hears_a_person(scenario, autojump_clock) -> None:
    verdict = judge(await run_scenario(scenario))
    assert verdict.passed, verdict.explain()
