"""Fixtures of the money-path simulation: the app, its callers and the lanes' lots (tests.lanes), the real arq worker in
burst mode (tests.ingest), and the seeds: a few fixed ones, or the one in `--money-seed` / MONEY_SEED (a failing
seed reproduces: `MONEY_SEED=<seed> pytest tests/money_path`)."""

from __future__ import annotations

import os

import pytest

from tests.ingest.conftest import run_worker  # noqa: F401  (the real arq worker, in burst mode)
from tests.lanes.conftest import app, callers, client, make_lot  # noqa: F401

SEEDS = (1, 7, 2026)


def chosen_seeds(config: pytest.Config) -> tuple[int, ...]:
    option = config.getoption("--money-seed", default=None)
    if option is not None:
        return (int(option),)
    if os.environ.get("MONEY_SEED"):
        return parse_seeds(os.environ["MONEY_SEED"])
    return SEEDS


def parse_seeds(text: str) -> tuple[int, ...]:
    """`5`, `5,9` or `100-119` (to hunt with many seeds)."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        seeds += range(int(first), int(last or first) + 1)
    return tuple(seeds)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "money_seed" in metafunc.fixturenames:
        metafunc.parametrize("money_seed", chosen_seeds(metafunc.config))
