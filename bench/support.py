"""What every bench shares: the smoke switch and the target ledger.

Smoke mode (`--bench-smoke`, which `make test` / a plain `pytest` run passes through the
pyproject addopts; or AGENTLOCATOR_BENCH_SMOKE=1): every bench runs once with its sizes cut
to a minimum (`pick(full, smoke)`), pytest-benchmark's timing loop off, so a bench that broke
after a refactor fails the test run in seconds. The figures are then meaningless and the
timing targets are reported, never enforced. `make bench` (which overrides addopts) runs the
full sizes.

Targets: every bench records its verdicts with `target()`; the terminal summary (see the root
conftest.py) lists them all, MISSED ones included, so a miss is never only in scrollback.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

SMOKE_ENV = "AGENTLOCATOR_BENCH_SMOKE"


def smoke() -> bool:
    return os.environ.get(SMOKE_ENV) == "1"


SMOKE = smoke()


def pick(full, small):  # type: ignore[no-untyped-def]
    """``full`` in a real bench run, ``small`` in smoke mode."""
    return small if SMOKE else full


@dataclass(frozen=True, slots=True)
class Verdict:
    area: str
    what: str
    value: float
    limit: str
    unit: str
    met: bool


VERDICTS: list[Verdict] = []


def target(area: str, what: str, value: float, limit: float, unit: str = "", *, at_least: bool = False,
           hard: bool = False) -> bool:
    """Record (and print) whether ``value`` meets ``limit`` (<= limit, or >= with ``at_least``).
    ``hard``: a full run fails on a miss (a user-facing limit, not an aim); smoke runs never do."""
    met = value >= limit if at_least else value <= limit
    verdict = Verdict(area, what, float(value), f"{'>=' if at_least else '<='} {limit:g}", unit, met)
    VERDICTS.append(verdict)
    print(f"[{area}]   target {what}: {value:.4g} {unit} ({verdict.limit} {unit}) {'met' if met else 'MISSED'}"
          + (" [smoke: sizes cut, not a measurement]" if SMOKE else ""))
    if hard and not met and not SMOKE:
        raise AssertionError(f"{what}: {value:.4g} {unit}, limit {verdict.limit} {unit}")
    return met


def check(condition: bool, message: str = "") -> None:
    """A timing assertion: fatal in a full run, reported in smoke mode (tiny sizes, cold caches)."""
    if condition:
        return
    if SMOKE:
        print(f"[smoke] not enforced: {message}")
        return
    raise AssertionError(message)


def summary_lines() -> list[str]:
    if not VERDICTS:
        return []
    width = max(len(v.what) for v in VERDICTS)
    out = []
    for v in VERDICTS:
        out.append(f"{'met   ' if v.met else 'MISSED'}  [{v.area}] {v.what:<{width}}  {v.value:10.4g} {v.unit:<3} "
                   f"(target {v.limit} {v.unit})")
    missed = sum(not v.met for v in VERDICTS)
    out.append(f"{len(VERDICTS)} targets, {missed} missed" + (" (smoke mode: sizes cut, figures meaningless)" if SMOKE else ""))
    return out
