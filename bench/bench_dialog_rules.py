"""Offline brain turn cost: one caller turn through RuleDialog (extraction, policy, scheduling,
guardrails), over whole scripted calls in Hebrew and English.
Baseline in the same run: the cheapest turn the same brain takes (low ASR confidence -> the
clarify line, still through the guardrails). The user's budget for a whole turn (EOU -> TTS
start) is ~1.2 s; this is the brain's share of it with no network at all.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_dialog_rules.py -s -o addopts="")
"""
from __future__ import annotations

import datetime as dt
import time

import numpy as np

from dialog.base import CallerTurn
from dialog.rules import RuleDialog
from dialog.schedule import TZ

from bench.support import check, pick

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=TZ)
CALLS = {
    "he-IL": ["שלום, אני מחפש דירה בתל אביב", "4 חדרים", "מיליון וחצי", "תוך שלושה חודשים", "קוראים לי דנה",
              "כן, נכון", "מחר בעשר", "כן", "לא, תודה"],
    "en-US": ["Hi, I'm looking for an apartment in Tel Aviv", "four rooms", "about two million shekels",
              "within three months", "my name is David", "yes", "tomorrow at ten", "yes", "no, that's all"],
}
ROUNDS = pick(150, 2)


def _calls(turn_times: list[float], clarify_times: list[float]) -> None:
    for language, lines in CALLS.items():
        full = RuleDialog(language, "+972501234567", NOW)
        cheap = RuleDialog(language, "+972501234567", NOW)
        for line in lines:
            t0 = time.perf_counter()
            reply = full.reply(CallerTurn(line, 0.9))
            t1 = time.perf_counter()
            cheap.reply(CallerTurn(line, 0.2))
            t2 = time.perf_counter()
            full.heard(reply.text, True)
            turn_times.append(t1 - t0)
            clarify_times.append(t2 - t1)
        assert full.finished and full.lead.status == "meeting_booked"


def test_rule_brain_turn_cost(benchmark) -> None:
    turn_times: list[float] = []
    clarify_times: list[float] = []

    def run() -> None:
        for _ in range(ROUNDS):
            _calls(turn_times, clarify_times)

    _calls([], [])  # warm-up: regex compilation, holiday tables
    benchmark.pedantic(run, rounds=1, iterations=1)
    turns = np.asarray(turn_times) * 1e6
    base = np.asarray(clarify_times) * 1e6
    print(f"\n[dialog] rule brain, {len(turns)} turns over {ROUNDS * len(CALLS)} whole calls (µs per turn):")
    for name, v in (("full turn (extract+policy+schedule+guard)", turns), ("clarify turn (baseline)", base)):
        print(f"[dialog]   {name:<44} p50 {np.percentile(v, 50):8.1f}  p95 {np.percentile(v, 95):8.1f}  p99 {np.percentile(v, 99):8.1f}")
    ratio = np.percentile(turns, 50) / np.percentile(base, 50)
    share = np.percentile(turns, 99) / 1.2e6 * 100
    print(f"[dialog]   full / baseline (p50) = {ratio:.1f}x;  p99 turn = {share:.3f}% of the 1.2 s turn budget")
    benchmark.extra_info.update({"turn_p50_us": round(float(np.percentile(turns, 50)), 1),
                                 "turn_p99_us": round(float(np.percentile(turns, 99)), 1),
                                 "clarify_p50_us": round(float(np.percentile(base, 50)), 1)})
    check(np.percentile(turns, 99) < 50_000, "a rule-brain turn p99 over 50 ms")  # never a noticeable slice of the call
