"""Fixtures shared by every test module. Tests never touch the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Any accidental hub call fails fast instead of downloading.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    """tests/fixtures/: small hand-made JSONL files and hub-shaped rows."""
    return FIXTURES


@pytest.fixture
def shared_root() -> Path:
    """../shared (real staged data), or $EDCO_SHARED (a git worktree elsewhere); skipped outside
    the development workspace, fatal in CI."""
    root = Path(os.environ.get("EDCO_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    if not root.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{root} is required in CI")
        pytest.skip("../shared not present (only in the development workspace / CI)")
    return root
