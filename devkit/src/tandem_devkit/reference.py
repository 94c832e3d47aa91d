"""The reference vectors made with the official sentence-transformers pipeline.

They live beside the clone (../shared/reference/), not in it: they are an
input from outside the project. TANDEM_REFERENCE_FILE points elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
DEFAULT_FILE = REPO.parent / "shared" / "reference" / "minilm-embeddings.json"


def reference_file() -> Path:
    return Path(os.environ.get("TANDEM_REFERENCE_FILE", DEFAULT_FILE))


def load_reference() -> dict[str, Any]:
    """The reference document: ``items`` of ``text`` and fp32 ``embedding``."""
    path = reference_file()
    if not path.exists():
        raise FileNotFoundError(f"reference vectors not found at {path}; set TANDEM_REFERENCE_FILE")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
