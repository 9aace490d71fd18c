"""Pytest fixtures shared by several test files (builders and helpers that are plain functions
live in tests/fixtures.py and tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lcrp_core.data.synth import generate


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """A synthetic benchmark for sweeps (MeViS layout, split ``valid``: 2 videos of 8 frames of
    64×96, seed 5), one per test module."""
    return generate(tmp_path_factory.mktemp("synth") / "bench", split="valid", videos=2, seed=5, frames=8,
                    size=(64, 96))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One feature cache per test module: later sweeps reuse what earlier ones computed."""
    return tmp_path_factory.mktemp("cache")
