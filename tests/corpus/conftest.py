import pytest
from trio.testing import MockClock

from .scenarios import all_voices
from .voices import prerender


@pytest.fixture
def autojump_clock() -> MockClock:
    # Virtual time: the scheduler jumps the clock whenever every task waits.
    return MockClock(autojump_threshold=0)


@pytest.fixture(scope="session", autouse=True)
def corpus_voices() -> None:
    """Every caller clip of the corpus, rendered once per session before any call runs."""
    prerender(all_voices())
