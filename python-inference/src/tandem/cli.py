"""``tandem``: serve, build-model, worker-math, chart-capacity."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from tandem.capacity import CapacityError, CapacityInputs, chart_capacity_json, plan_capacity
from tandem.model.manifest import ModelManifest
from tandem.ops.logs import configure_logging
from tandem.settings import Settings, default_model_dir

log = logging.getLogger("tandem")


def main(argv: Sequence[str] | None = None) -> int:
    process_started = time.monotonic() - _process_age_s()
    # The tokenizer library must never reach for a model hub at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="tandem", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("serve", help="run the core (settings from TANDEM_CORE_* variables)")

    build = commands.add_parser(
        "build-model", help="build the ONNX model from the packaged weights"
    )
    build.add_argument("--output", type=Path, default=default_model_dir())
    build.add_argument(
        "--precision", action="append", choices=("fp32", "int8"),
        help="graphs to build (repeatable; default fp32 and int8)",
    )  # fmt: skip

    math = commands.add_parser("worker-math", help="print the worker/memory plan as JSON")
    math.add_argument(
        "--cpus", type=_positive_float, required=True, help="CPUs the container gets (> 0)"
    )
    math.add_argument("--workers", type=int, default=0, help="0 = derive from --cpus")
    math.add_argument("--threads-per-worker", type=int, default=0, help="0 = derive")
    math.add_argument(
        "--weights-mib", type=float, help="default: the built model's, for --precision"
    )
    math.add_argument(
        "--activation-bytes-per-token", type=int,
        help="default: the built model's, for --precision (measured by build-model)",
    )  # fmt: skip
    math.add_argument(
        "--precision", choices=("fp32", "int8"), default="fp32",
        help="which graph's measured inputs to read from the manifest",
    )  # fmt: skip
    math.add_argument("--max-batch-tokens", type=int, default=1024)
    # The admission bounds default to the core's own defaults (settings.py).
    for name in (
        "max_inflight_requests",
        "max_inflight_bytes",
        "max_texts_per_request",
        "max_request_bytes",
    ):
        math.add_argument(
            "--" + name.replace("_", "-"), type=int, default=Settings.model_fields[name].default
        )
    math.add_argument(
        "--transit-calls",
        type=int,
        default=0,
        help="calls that can reach the core at once, each holding its raw message: gateway "
        "pods x the gateway's max in flight (the chart derives it). 0 = --max-inflight-requests, "
        "i.e. one gateway whose in-flight limit equals the core's (both default to 32)",
    )
    math.add_argument(
        "--adaptive-threads",
        action=argparse.BooleanOptionalAction,
        default=Settings.model_fields["adaptive_threads"].default,
        help="count the wide session lone batches run on (TANDEM_CORE_ADAPTIVE_THREADS)",
    )
    math.add_argument("--model-dir", type=Path, default=None)

    chart = commands.add_parser(
        "chart-capacity",
        help="print the chart's generated capacity values (JSON) from the built model's manifest",
    )
    chart.add_argument("--model-dir", type=Path, default=None)

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(process_started)
    if args.command == "build-model":
        # ONNX Runtime's quantizer logs every tensor at INFO on the root logger.
        configure_logging("WARNING", "text")
        log.setLevel(logging.INFO)
        from tandem.model.build import build_model_dir  # noqa: PLC0415 (needs build extras)

        if args.output.exists() and not args.output.is_dir():
            print(f"tandem: --output {args.output} exists and is not a directory", file=sys.stderr)
            return 2
        manifest = build_model_dir(args.output, args.precision or ("fp32", "int8"))
        print(f"built {manifest.model_id} ({', '.join(manifest.graphs)}) in {args.output}")
        return 0
    if args.command == "chart-capacity":
        try:
            manifest = ModelManifest.read(_model_dir(args))
        except (FileNotFoundError, ValueError) as exc:
            print(f"tandem: {exc}", file=sys.stderr)
            return 2
        measured: dict[str, dict[str, int]] = {
            p: c.model_dump() for p, c in manifest.capacity.items()
        }
        sys.stdout.write(chart_capacity_json(manifest.model_id, measured))
        return 0
    return _worker_math(args)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"cpus must be above 0, got {text}")
    return value


def _model_dir(args: argparse.Namespace) -> Path:
    if args.model_dir:
        return Path(args.model_dir)
    return Path(os.environ.get("TANDEM_CORE_MODEL_DIR", default_model_dir()))


def _process_age_s() -> float:
    """Seconds since this process was created (imports included), from /proc."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    started_ticks = int(fields[19])  # field 22 of stat; 20th after "(comm)"
    return max(0.0, uptime_s - started_ticks / os.sysconf("SC_CLK_TCK"))


def _serve(process_started: float) -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"tandem: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    from tandem.process import serve  # noqa: PLC0415 (keeps build-model/worker-math light)

    try:
        asyncio.run(serve(settings, process_started=process_started))
    except (CapacityError, OSError, ValueError) as exc:
        # OSError: FileNotFoundError (no built model) and ports that cannot be bound.
        log.error("cannot start: %s", exc)
        return 2
    return 0


def _worker_math(args: argparse.Namespace) -> int:
    weights_mib = args.weights_mib
    activation = args.activation_bytes_per_token
    if weights_mib is None or activation is None:
        try:
            measured = ModelManifest.read(_model_dir(args)).capacity_of(args.precision)
        except (FileNotFoundError, ValueError) as exc:
            print(f"tandem: {exc}", file=sys.stderr)
            return 2
        if weights_mib is None:
            weights_mib = measured.weights_bytes / (1 << 20)
        if activation is None:
            activation = measured.activation_bytes_per_token
    try:
        plan = plan_capacity(
            CapacityInputs(
                cpus=args.cpus,
                workers=args.workers,
                threads_per_worker=args.threads_per_worker,
                weights_mib=weights_mib,
                activation_bytes_per_token=activation,
                max_batch_tokens=args.max_batch_tokens,
                max_inflight_requests=args.max_inflight_requests,
                max_inflight_bytes=args.max_inflight_bytes,
                max_texts_per_request=args.max_texts_per_request,
                transit_calls=args.transit_calls or args.max_inflight_requests,
                max_request_bytes=args.max_request_bytes,
                adaptive_threads=args.adaptive_threads,
            )
        )
    except CapacityError as exc:
        print(f"tandem: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(plan.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
