"""The caller-behaviour corpus: every scenario is one call through the real session, in
virtual time, with the real RuleBrain, judged from the caller's side (judge.py)."""
from __future__ import annotations

import pytest

from .harness import run_scenario
from .judge import judge
from .scenarios import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[sc.name for sc in SCENARIOS])
async def test_caller_hears_a_person(scenario, autojump_clock) -> None:
    verdict = judge(await run_scenario(scenario))
    assert verdict.passed, verdict.explain()
