import pytest
from trio.testing import MockClock

from .scenarios import all_voices
from .voices import prerender


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "corpus: the caller-behaviour corpus (tests/corpus); -m 'not corpus' skips it")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/corpus/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.corpus)


@pytest.fixture
def autojump_clock() -> MockClock:
    # Virtual time: the scheduler jumps the clock whenever every task waits.
    return MockClock(autojump_threshold=0)


@pytest.fixture(scope="session", autouse=True)
def corpus_voices() -> None:
    """Every caller clip of the corpus, rendered once per session before any call runs."""
    prerender(all_voices())
