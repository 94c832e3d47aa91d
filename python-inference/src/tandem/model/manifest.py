"""The manifest written next to a built model: what the runtime needs to know.

The runtime reads only the model directory (ONNX files, tokenizer, manifest),
never the source package, so a container image carries just the built model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
FORMAT_VERSION = 1

Precision = Literal["fp32", "int8"]


class ModelManifest(BaseModel):
    """Describes one built model directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    model_id: str
    aliases: tuple[str, ...]
    dimension: int
    max_tokens: int
    # precision -> ONNX file name inside the model directory
    graphs: dict[Precision, str]
    tokenizer: str = TOKENIZER_FILE
    source_package: str
    source_sha256: str
    # Size of the fp32 weights in bytes: the worker math's model memory term.
    weights_bytes: int

    @classmethod
    def read(cls, model_dir: Path) -> ModelManifest:
        path = model_dir / MANIFEST_FILE
        try:
            text = path.read_text()
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"no built model at {model_dir} ({MANIFEST_FILE} missing): run "
                f"'tandem build-model --output {model_dir}' (make model does this), "
                "or set TANDEM_CORE_MODEL_DIR to a built model directory"
            ) from exc
        manifest = cls.model_validate_json(text)
        if manifest.format_version != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format version {manifest.format_version}, this core reads "
                f"{FORMAT_VERSION}; rebuild the model with 'tandem build-model'"
            )
        return manifest

    def write(self, model_dir: Path) -> None:
        (model_dir / MANIFEST_FILE).write_text(self.model_dump_json(indent=2) + "\n")

    def graph_path(self, model_dir: Path, precision: Precision) -> Path:
        try:
            return model_dir / self.graphs[precision]
        except KeyError:
            built = ", ".join(sorted(self.graphs))
            raise ValueError(
                f"{model_dir} has no {precision} graph (built: {built}); rebuild with "
                f"'tandem build-model --precision {precision}'"
            ) from None
