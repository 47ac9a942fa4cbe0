"""Deploy fixtures: compose.yaml as compose reads it, and the image's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.deployfiles import build_workdir, compose_config


@pytest.fixture
def config() -> dict[str, Any]:
    """compose.yaml interpolated as compose would with no .env and an empty shell."""
    return compose_config({})


@pytest.fixture
def image_workdir(tmp_path: Path) -> Path:
    """A copy of the image's WORKDIR, laid out from the Dockerfile's COPY lines."""
    return build_workdir(tmp_path / "image")
