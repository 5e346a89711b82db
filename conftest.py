"""Root pytest hooks: the benches' smoke mode and their target summary (see bench/support.py).

`--bench-smoke` is in pyproject's addopts, so `make test` and a plain `pytest` collect every
bench and run each once, tiny; `make bench` overrides addopts and measures for real.
"""
from __future__ import annotations

import os
import sys

import pytest

SMOKE_ENV = "AGENTLOCATOR_BENCH_SMOKE"  # bench/support.py reads it when a bench module is imported


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-smoke", action="store_true", default=False,
                     help="run every bench once with minimal sizes; timing targets reported, not enforced")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--bench-smoke") or os.environ.get(SMOKE_ENV) == "1":
        os.environ[SMOKE_ENV] = "1"
        # pytest-benchmark then calls each benchmarked function once, with no timing loop
        if hasattr(config.option, "benchmark_disable"):
            config.option.benchmark_disable = True


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    support = sys.modules.get("bench.support")
    lines = support.summary_lines() if support is not None else []
    if lines:
        terminalreporter.section("bench targets")
        for line in lines:
            terminalreporter.write_line(line)
