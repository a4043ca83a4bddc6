"""Shared fixtures: sample runs copied into tmp_path, never used in place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "sample_runs"


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A private copy of sample_runs/."""
    target = tmp_path / "sample_runs"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target
