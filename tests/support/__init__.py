"""Helpers the tests share: test modules import these, never one another."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository checkout under test
VENV_BIN = Path(sys.executable).parent  # the venv running pytest, as make run's
