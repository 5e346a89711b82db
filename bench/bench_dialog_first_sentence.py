"""OpenAI brain overhead to the first sentence, against a zero-latency fake model.

The fake (tests/dialog/fake_openai.py: real HTTP/1.1 + SSE on loopback) answers at once, so
what is left is our cost: building the prompt and state note, the official client's request
and SSE parsing, sentence splitting and the stream guard.
Baseline in the same run: the same official client (AsyncOpenAI, warm keep-alive connection)
making the same request and reading until the same first sentence is complete, without the
brain around it. Both run interleaved, under trio, in one process.
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_dialog_first_sentence.py -s -o addopts="")
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import trio

sys.path.append(str(Path(__file__).resolve().parent.parent / "tests" / "dialog"))

from fake_openai import FakeOpenAI, Script  # noqa: E402

from dialog.base import CallerTurn  # noqa: E402
from dialog.openai_brain import OpenAIBrain, OpenAIConfig  # noqa: E402
from dialog.prompt import TOOLS  # noqa: E402
from dialog.schedule import TZ  # noqa: E402

from bench.support import check, pick  # noqa: E402

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=TZ)
REPLY = "מעולה, דירה בתל אביב. מה התקציב בערך?"
N = pick(150, 3)


async def _main() -> dict[str, np.ndarray]:
    import openai

    fake = FakeOpenAI(default=Script(REPLY, tool_args={"area": "תל אביב", "property_type": "דירה"}))
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        config = OpenAIConfig(api_key="sk-bench", model="fake-model", base_url=fake.base_url)
        brain = OpenAIBrain(config, "he-IL", "+972501234567", NOW)
        client = openai.AsyncOpenAI(api_key="sk-bench", base_url=fake.base_url, max_retries=0)
        messages = brain._messages(False) + [{"role": "user", "content": "דירה בתל אביב"}]

        async def baseline() -> float:
            t0 = time.perf_counter()
            stream = await client.chat.completions.create(
                model="fake-model", messages=messages, tools=TOOLS, stream=True)
            text = ""
            elapsed = None
            async with stream:
                async for chunk in stream:  # read to the end, as the brain does: the connection stays warm
                    if elapsed is None and chunk.choices and chunk.choices[0].delta.content:
                        text += chunk.choices[0].delta.content
                        if ". " in text:
                            elapsed = time.perf_counter() - t0
            assert elapsed is not None
            return elapsed

        async def ours() -> float:
            brain.history.clear()
            t0 = time.perf_counter()
            agen = brain.respond(CallerTurn("דירה בתל אביב", 0.9))
            first = await agen.__anext__()
            elapsed = time.perf_counter() - t0
            assert first == "מעולה, דירה בתל אביב."
            async for _ in agen:  # let it finish the turn (tool call) like a real session does
                pass
            return elapsed

        for _ in range(pick(20, 1)):  # warm-up: connection, imports, pydantic models
            await baseline()
            await ours()
        base, mine = [], []
        for _ in range(N):
            base.append(await baseline())
            mine.append(await ours())
        await client.close()
        await brain.aclose()
        nursery.cancel_scope.cancel()
    return {"baseline": np.asarray(base) * 1000, "brain": np.asarray(mine) * 1000}


def test_first_sentence_overhead(benchmark) -> None:
    results = benchmark.pedantic(lambda: trio.run(_main), rounds=1, iterations=1)
    base, mine = results["baseline"], results["brain"]
    print(f"\n[dialog] request -> first sentence against a zero-latency fake model, {N} turns each (ms):")
    for name, v in (("OpenAIBrain.respond", mine), ("bare AsyncOpenAI stream (baseline)", base)):
        print(f"[dialog]   {name:<36} p50 {np.percentile(v, 50):6.2f}  p95 {np.percentile(v, 95):6.2f}  p99 {np.percentile(v, 99):6.2f}")
    ratio = np.percentile(mine, 50) / np.percentile(base, 50)
    overhead = np.percentile(mine, 50) - np.percentile(base, 50)
    print(f"[dialog]   brain / baseline (p50) = {ratio:.2f}x;  brain overhead p50 = {overhead:.2f} ms "
          f"(first-sentence deadline 1500 ms)")
    benchmark.extra_info.update({"brain_p50_ms": round(float(np.percentile(mine, 50)), 2),
                                 "baseline_p50_ms": round(float(np.percentile(base, 50)), 2)})
    check(np.percentile(mine, 95) < 200, "brain p95 to the first sentence over 200 ms on a zero-latency model")
