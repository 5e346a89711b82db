"""`python -m tests.corpus.report`: run the whole corpus in virtual time and print the
behaviour table (markdown, for the README): per scenario group the pass rate and the caller's
figures, then one line per scenario with the first broken rule.

    python -m tests.corpus.report                 # everything
    python -m tests.corpus.report -k backchannel  # scenarios whose name or group contains it
    python -m tests.corpus.report --explain       # every broken rule of every failing scenario
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import trio
from trio.testing import MockClock

from .caller import Scenario
from .harness import run_scenario
from .judge import Verdict, judge
from .scenarios import SCENARIOS, all_voices
from .voices import prerender


def run_all(scenarios: list[Scenario]) -> list[Verdict]:
    prerender(all_voices())
    verdicts: list[Verdict] = []
    for sc in scenarios:
        async def one(sc: Scenario = sc) -> Verdict:
            return judge(await run_scenario(sc))

        verdicts.append(trio.run(one, clock=MockClock(autojump_threshold=0)))
    return verdicts


def _ms(values: list[float], how: str) -> str:
    if not values:
        return "–"
    arr = np.asarray(values)
    return f"{(np.percentile(arr, 50) if how == 'p50' else arr.max()):.0f}"


def behaviour_table(scenarios: list[Scenario], verdicts: list[Verdict]) -> str:
    groups: dict[str, list[tuple[Scenario, Verdict]]] = {}
    for sc, v in zip(scenarios, verdicts):
        groups.setdefault(sc.group, []).append((sc, v))
    out = [
        "| group | pass | dead air p50 / max (ms) | unanswered | talk-over max (ms) | halt max (ms) | resume max (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, rows in groups.items():
        vs = [v for _, v in rows]
        dead = [x for v in vs for x in v.dead_air_ms]
        over = [x for v in vs for x in v.talk_over_ms]
        halt = [x for v in vs for x in v.halt_ms]
        resume = [x for v in vs for x in v.resume_ms]
        never = sum(v.resume_never for v in vs)
        resume_s = _ms(resume, "max") + (f" (+{never} never)" if never else "")
        out.append(
            f"| {group} | {sum(v.passed for v in vs)}/{len(vs)} | {_ms(dead, 'p50')} / {_ms(dead, 'max')} | "
            f"{sum(v.unanswered for v in vs)} | {_ms(over, 'max')} | {_ms(halt, 'max')} | {resume_s} |"
        )
    total = sum(v.passed for v in verdicts)
    out.append(f"| **all** | **{total}/{len(verdicts)}** | | | | | |")
    out += ["", "| scenario | lang | voice | SNR | echo | bursts | result | first broken rule |", "|---|---|---|---|---|---|---|---|"]
    for sc, v in zip(scenarios, verdicts):
        voices = sorted({s.voice.voice for s in sc.steps if s.voice.kind == "speech"})
        echo = f"{sc.echo.gain_db:g} dB/{sc.echo.delay_ms} ms" if sc.echo is not None else "–"  # type: ignore[attr-defined]
        first = v.failures[0].replace("|", "/") if v.failures else ""
        out.append(
            f"| {sc.name} | {sc.lang} | {'+'.join(voices) or '–'} | {sc.snr_db:g} dB | {echo} | "
            f"{'yes' if sc.bursts else '–'} | {'pass' if v.passed else '**FAIL**'} | {first} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", default="", help="only scenarios whose name or group contains this")
    ap.add_argument("--explain", action="store_true", help="print every broken rule of failing scenarios")
    args = ap.parse_args(argv)
    chosen = [sc for sc in SCENARIOS if args.k in sc.name or args.k in sc.group]
    started = time.perf_counter()
    verdicts = run_all(chosen)
    print(behaviour_table(chosen, verdicts))
    print(f"\n{len(chosen)} scenarios in {time.perf_counter() - started:.1f} s wall time (virtual-time calls).")
    if args.explain:
        print()
        for v in verdicts:
            if not v.passed:
                print(v.explain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
