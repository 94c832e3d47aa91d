"""Which SIMD features the CPU offers ONNX Runtime's kernels, read once at start-up.

int8 speed depends on them: MLAS (ORT's CPU kernels) picks its u8 x s8 GEMM
at load time from CPUID, best first: AMX (AMX-TILE + AMX-INT8, and the kernel
granting tile state), AVX-512 VNNI, AVX-512 core (BW/DQ/VL), AVX-VNNI, AVX2.
Dynamic int8 graphs (model/quantize.py) multiply uint8 activations by int8
weights, so that GEMM is the one that runs (onnxruntime/core/mlas/lib/
platform.cpp; docs/benchmarks/int8.md). An operator who sees int8 slower than
the benchmarks can read here whether the node lacks the instructions.

Linux publishes the flags the kernel enabled in /proc/cpuinfo; elsewhere (or
in a sandbox without /proc) the features are reported as unknown, not absent.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

CPUINFO = Path("/proc/cpuinfo")

# Label name -> /proc/cpuinfo flag. The labels are the metric's, so they are
# fixed whatever the CPU has.
FEATURES = {
    "avx2": "avx2",
    "fma": "fma",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512dq": "avx512dq",
    "avx512vl": "avx512vl",
    "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16",
    "avx_vnni": "avx_vnni",
    "avx_vnni_int8": "avx_vnni_int8",
    "amx_tile": "amx_tile",
    "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
}
UNKNOWN = "unknown"

# MLAS's u8 x s8 GEMM kernels, best first, with the features each needs
# (platform.cpp). For AMX, MLAS also asks the kernel for tile state
# (arch_prctl); a kernel older than 5.16 refuses and MLAS falls back to the next.
_AVX512_CORE = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl"})
INT8_GEMM_ORDER: tuple[tuple[str, frozenset[str]], ...] = (
    ("amx", frozenset({"amx_tile", "amx_int8"})),
    ("avx512_vnni", _AVX512_CORE | {"avx512_vnni"}),
    ("avx512_core", _AVX512_CORE),
    ("avx_vnni", frozenset({"avx2", "avx_vnni"})),
    ("avx2", frozenset({"avx2"})),
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CpuFeatures:
    """The features of FEATURES this CPU has (None: could not be read)."""

    cpu_model: str
    present: frozenset[str] | None
    # Every x86-64 CPU lists sse2; MLAS's x86 kernels only apply when it does.
    x86: bool = True

    @property
    def int8_gemm(self) -> str:
        """The u8 x s8 GEMM kernel MLAS selects on these features (its order of preference)."""
        if self.present is None:
            return UNKNOWN
        for kernel, needs in INT8_GEMM_ORDER:
            if needs <= self.present:
                return kernel
        return "sse" if self.x86 else UNKNOWN

    def labels(self) -> dict[str, str]:
        """One label per feature ("1", "0", or "unknown"), and the int8 GEMM kernel."""
        if self.present is None:
            values = dict.fromkeys(FEATURES, UNKNOWN)
        else:
            values = {name: "1" if name in self.present else "0" for name in FEATURES}
        return {**values, "int8_gemm": self.int8_gemm}


def read_cpu_features(cpuinfo: Path = CPUINFO) -> CpuFeatures:
    """Parse the first processor's flags (x86 "flags"; other architectures "Features")."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return CpuFeatures(cpu_model=platform.processor() or UNKNOWN, present=None, x86=False)
    model, flags = UNKNOWN, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == UNKNOWN:
            model = value.strip()
        elif key in ("flags", "Features") and flags is None:
            flags = set(value.split())
    if flags is None:
        return CpuFeatures(cpu_model=model, present=None, x86=False)
    return CpuFeatures(
        cpu_model=model,
        present=frozenset(name for name, flag in FEATURES.items() if flag in flags),
        x86="sse2" in flags,
    )


def report_cpu_features(registry: CollectorRegistry, cpuinfo: Path = CPUINFO) -> CpuFeatures:
    """Log the features in one structured line and export them as an info gauge."""
    features = read_cpu_features(cpuinfo)
    labels = features.labels()
    log.info(
        "cpu features",
        extra={
            "cpu_model": features.cpu_model,
            "features": sorted(features.present) if features.present is not None else UNKNOWN,
            "int8_gemm": labels["int8_gemm"],
        },
    )
    Gauge(
        "tandem_core_cpu_features_info",
        "SIMD features the CPU offers ONNX Runtime's kernels, and the int8 GEMM kernel "
        "they select (value is always 1).",
        list(labels),
        registry=registry,
    ).labels(**labels).set(1)
    return features
