from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tandem.ops.cpu_features import FEATURES, read_cpu_features, report_cpu_features

BASE = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c"
# Flags as Linux lists them (trimmed) for a few real CPU families.
SAPPHIRE_RAPIDS = (
    f"{BASE} avx2 fma avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 avx_vnni "
    "amx_bf16 amx_tile amx_int8"
)
ZEN4 = f"{BASE} avx2 fma avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16"
SKYLAKE_SP = f"{BASE} avx2 fma avx512f avx512dq avx512bw avx512vl"
ALDER_LAKE = f"{BASE} avx2 fma avx_vnni"
HASWELL = f"{BASE} avx2 fma"


def cpuinfo(tmp_path: Path, flags: str, model: str = "Test CPU", processors: int = 2) -> Path:
    block = f"processor\t: {{n}}\nmodel name\t: {model}\nflags\t\t: {flags}\n\n"
    path = tmp_path / "cpuinfo"
    path.write_text("".join(block.format(n=n) for n in range(processors)))
    return path


@pytest.mark.parametrize(
    ("flags", "kernel"),
    [
        (SAPPHIRE_RAPIDS, "amx"),
        (ZEN4, "avx512_vnni"),
        (SKYLAKE_SP, "avx512_core"),
        (ALDER_LAKE, "avx_vnni"),
        (HASWELL, "avx2"),
        (BASE, "sse"),
        # AVX-512 VNNI without the whole AVX-512 core (BW/DQ/VL) is not MLAS's VNNI path.
        (f"{BASE} avx2 avx512f avx512_vnni", "avx2"),
        # AMX needs both the tile and the int8 instructions.
        (f"{ZEN4} amx_tile amx_bf16", "avx512_vnni"),
    ],
)
def test_int8_gemm_follows_mlas_order_of_preference(
    tmp_path: Path, flags: str, kernel: str
) -> None:
    assert read_cpu_features(cpuinfo(tmp_path, flags)).int8_gemm == kernel


def test_labels_say_1_or_0_for_every_feature(tmp_path: Path) -> None:
    features = read_cpu_features(cpuinfo(tmp_path, ZEN4, model="AMD EPYC 9R14"))

    labels = features.labels()
    assert features.cpu_model == "AMD EPYC 9R14"
    assert set(labels) == {*FEATURES, "int8_gemm"}
    assert labels["avx512_vnni"] == "1"
    assert labels["amx_int8"] == "0"
    assert labels["avx_vnni"] == "0"


def test_a_flag_that_only_starts_like_a_feature_is_not_it(tmp_path: Path) -> None:
    # "avx512_vnni" must not count as "avx_vnni" or "avx512f".
    features = read_cpu_features(cpuinfo(tmp_path, f"{BASE} avx2 avx512_vnni"))

    assert features.present == frozenset({"avx2", "avx512_vnni"})


def test_unreadable_cpuinfo_reports_unknown_not_absent(tmp_path: Path) -> None:
    features = read_cpu_features(tmp_path / "missing")

    assert features.present is None
    assert features.int8_gemm == "unknown"
    assert set(features.labels().values()) == {"unknown"}


def test_arm_features_line_is_read_and_no_x86_kernel_is_claimed(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd40\n")

    features = read_cpu_features(path)
    assert features.present == frozenset()
    assert features.int8_gemm == "unknown"


def test_report_logs_one_line_and_exports_the_info_gauge(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    with caplog.at_level(logging.INFO, logger="tandem.ops.cpu_features"):
        report_cpu_features(registry, cpuinfo(tmp_path, SAPPHIRE_RAPIDS))

    (record,) = [r for r in caplog.records if r.getMessage() == "cpu features"]
    assert record.int8_gemm == "amx"  # type: ignore[attr-defined]
    assert "amx_int8" in record.features  # type: ignore[attr-defined]
    json.dumps(record.features)  # type: ignore[attr-defined]  # serialisable for the JSON log
    labels = read_cpu_features(cpuinfo(tmp_path, SAPPHIRE_RAPIDS)).labels()
    assert registry.get_sample_value("tandem_core_cpu_features_info", labels) == 1.0


def test_this_machine_is_read() -> None:
    """On Linux the real /proc/cpuinfo parses; elsewhere the report says unknown."""
    features = read_cpu_features()
    if Path("/proc/cpuinfo").exists():
        assert features.present is not None
        assert features.cpu_model
    else:
        assert features.int8_gemm == "unknown"
