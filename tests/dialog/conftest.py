from __future__ import annotations

import sys
from pathlib import Path

import pytest

# fake_openai, dialog_corpus: plain modules next to the tests, named so no other dir's clash
sys.path.append(str(Path(__file__).parent))  # appended: other dirs import their own `conftest` by name

from fake_openai import FakeOpenAI  # noqa: E402


@pytest.fixture
async def fake_openai(nursery) -> FakeOpenAI:
    fake = FakeOpenAI()
    await nursery.start(fake.serve)
    return fake
