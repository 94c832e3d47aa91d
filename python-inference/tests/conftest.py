"""Shared fixtures: the built model, the reference vectors, a running core."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import RunningCore, core_settings

from tandem.model.build import build_model_dir
from tandem.model.manifest import MANIFEST_FILE

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference" / "minilm-embeddings.json"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built model: $TANDEM_CORE_MODEL_DIR (make test sets it), else built here."""
    configured = os.environ.get("TANDEM_CORE_MODEL_DIR")
    if configured and (Path(configured) / MANIFEST_FILE).exists():
        return Path(configured)
    out = tmp_path_factory.mktemp("model")
    build_model_dir(out, ("fp32", "int8"))
    return out


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """Vectors made with the official sentence-transformers pipeline."""
    path = Path(os.environ.get("TANDEM_REFERENCE_FILE", DEFAULT_REFERENCE))
    if not path.exists():
        pytest.fail(
            f"reference vectors not found at {path}: clone the repository next to shared/ "
            "or set TANDEM_REFERENCE_FILE"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="session")
def core(model_dir: Path) -> Iterator[RunningCore]:
    """A real core (real model) on free loopback ports, shared by the session."""
    running = RunningCore(core_settings(model_dir)).start()
    yield running
    running.stop()
