"""The OpenAI brain sends a bounded request however long the call: the last
MAX_HISTORY_MESSAGES messages of the conversation (each cut to MAX_MESSAGE_CHARS) after the
system prompt, the few-shot examples and the state note (which carries every slot, so the
cut loses nothing the lead needs). Driven against the fake OpenAI server over real HTTP."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests" / "dialog") not in sys.path:  # the fake lives beside the dialog tests
    sys.path.append(str(ROOT / "tests" / "dialog"))

from fake_openai import FakeOpenAI, Script  # noqa: E402

from dialog import openai_brain  # noqa: E402
from dialog.base import CallerTurn  # noqa: E402
from dialog.openai_brain import OpenAIBrain, OpenAIConfig  # noqa: E402
from dialog.prompt import FEW_SHOT  # noqa: E402

import datetime as dt  # noqa: E402

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
NOTE = 1 + len(FEW_SHOT)  # index of the state note in a request's messages


@pytest.fixture
async def fake(nursery) -> FakeOpenAI:  # type: ignore[no-untyped-def]
    server = FakeOpenAI()
    server.default = Script("הבנתי. ומה עוד חשוב לכם בדירה?")
    await nursery.start(server.serve)
    return server


def make(fake: FakeOpenAI) -> OpenAIBrain:
    config = OpenAIConfig(api_key="sk-test", model="fake-model", base_url=fake.base_url)
    return OpenAIBrain(config, "he-IL", "+972501234567", NOW)


async def turn(brain: OpenAIBrain, text: str) -> list[str]:
    with trio.fail_after(10):
        out = [s async for s in brain.respond(CallerTurn(text, 0.95, False))]
    brain.heard(" ".join(out), True)
    return out


def size(request: dict) -> int:
    return len(json.dumps(request["messages"], ensure_ascii=False).encode())


async def test_a_200_turn_call_sends_requests_of_bounded_size(fake: FakeOpenAI) -> None:
    brain = make(fake)
    brain.heard(brain.opening(), True)
    fake.push(Script("מעולה, תל אביב. איזה סוג נכס?", tool_args={"area": "תל אביב"}))
    await turn(brain, "אני מחפש דירה בתל אביב")
    assert brain.lead.slots.area == "תל אביב"
    first = fake.requests[-1]
    for i in range(200):
        await turn(brain, f"עוד פרט חשוב מספר {i}: " + "מרפסת גדולה ושקטה עם נוף לים " * 4)
    assert len(fake.requests) >= 150 and not brain.fallback
    n = openai_brain.MAX_HISTORY_MESSAGES
    sizes = [size(r) for r in fake.requests]
    plateau = sizes[n + 2]
    assert max(sizes) <= plateau * 1.2, (max(sizes), plateau)
    last = fake.requests[-1]["messages"]
    conversation = last[NOTE + 1 :]
    assert len(conversation) <= n + 1  # the window, and at most the omission note
    # what is kept: the prompt, the examples, the state note (with the slot the model never
    # saw again: the area from the first turn), and the latest turns in order
    assert last[:NOTE] == first["messages"][:NOTE]
    assert last[NOTE]["role"] == "system" and "תל אביב" in last[NOTE]["content"]
    assert last[-1]["role"] == "user" and last[-1]["content"].startswith("עוד פרט חשוב מספר 199:")
    assert last[-2]["role"] == "assistant" and last[-3]["content"].startswith("עוד פרט חשוב מספר 198:")
    assert len(brain.history) <= n + 4  # memory, too, stays bounded


async def test_one_huge_turn_is_cut(fake: FakeOpenAI) -> None:
    brain = make(fake)
    brain.heard(brain.opening(), True)
    await turn(brain, "דירה בחיפה " * 100_000)
    [request] = fake.requests
    assert len(request["messages"][-1]["content"]) <= openai_brain.MAX_MESSAGE_CHARS
    assert size(request) < 64 * 1024
