from __future__ import annotations

from pathlib import Path

import pytest

from tandem.ops import cgroups


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_quota_and_memory(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "150000 100000\n")
    _write(tmp_path / "memory.max", "536870912\n")
    assert cgroups.cpu_quota(tmp_path) == 1.5
    assert cgroups.memory_limit(tmp_path) == 512 << 20


def test_v2_without_limits(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "max 100000\n")
    _write(tmp_path / "memory.max", "max\n")
    assert cgroups.cpu_quota(tmp_path) is None
    assert cgroups.memory_limit(tmp_path) is None


def test_v1_quota_and_memory(tmp_path: Path) -> None:
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "200000\n")
    _write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    _write(tmp_path / "memory" / "memory.limit_in_bytes", str(1 << 30))
    assert cgroups.cpu_quota(tmp_path) == 2.0
    assert cgroups.memory_limit(tmp_path) == 1 << 30


def test_v1_unlimited(tmp_path: Path) -> None:
    _write(tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    _write(tmp_path / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")
    assert cgroups.cpu_quota(tmp_path) is None
    assert cgroups.memory_limit(tmp_path) is None


def test_available_cpus_rounds_a_fractional_quota_up_within_affinity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cgroups.os, "sched_getaffinity", lambda _: {0, 1, 2, 3})
    _write(tmp_path / "cpu.max", "150000 100000\n")
    assert cgroups.available_cpus(tmp_path) == 2
    _write(tmp_path / "cpu.max", "1600000 100000\n")  # 16 CPUs of quota, 4 in affinity
    assert cgroups.available_cpus(tmp_path) == 4
