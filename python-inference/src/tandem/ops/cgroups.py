"""What this process may use: the cgroup CPU quota and memory limit, not the host's.

A container limited to 2 CPUs on a 64-core node still sees 64 cores in
os.cpu_count(); sizing thread pools from that oversubscribes the quota and
the kernel throttles the whole container. cgroup v2 publishes the quota in
``cpu.max``; v1 in ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``. The memory
limit is ``memory.max`` (v2) or ``memory.limit_in_bytes`` (v1).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup quota, or None when there is no quota."""
    for reader in (_quota_v2, _quota_v1):
        quota = reader(root)
        if quota is not None:
            return quota
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Whole CPUs this process may use: min(affinity, quota), at least 1.

    A fractional quota rounds up (1.5 CPUs -> 2 threads): the last thread gets
    part of a core, which is better than leaving half a core idle.
    """
    affinity = len(os.sched_getaffinity(0))
    quota = cpu_quota(root)
    if quota is None:
        return max(1, affinity)
    return max(1, min(affinity, math.ceil(quota - 1e-9)))


def memory_limit(root: Path = CGROUP_ROOT) -> int | None:
    """The cgroup memory limit in bytes, or None when there is none."""
    for directory in _v2_dirs(root):
        try:
            value = (directory / "memory.max").read_text().strip()
        except OSError:
            continue
        return None if value == "max" else int(value)
    try:
        value = (root / "memory" / "memory.limit_in_bytes").read_text().strip()
    except OSError:
        return None
    limit = int(value)
    # v1 reports "no limit" as a huge page-aligned number near 2**63.
    return None if limit >= 1 << 60 else limit


def _v2_dirs(root: Path) -> list[Path]:
    # In a container the process's own cgroup is mounted at the root. On a
    # host, /proc/self/cgroup names it ("0::/path").
    return [root, *_own_v2_dirs(root)]


def _quota_v2(root: Path) -> float | None:
    for directory in _v2_dirs(root):
        try:
            quota, period = (directory / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota == "max":
            return None
        return int(quota) / int(period)
    return None


def _own_v2_dirs(root: Path) -> list[Path]:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    return [root / line.split(":", 2)[2].lstrip("/") for line in lines if line.startswith("0::")]


def _quota_v1(root: Path) -> float | None:
    for directory in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
        try:
            quota = int((directory / "cpu.cfs_quota_us").read_text())
            period = int((directory / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota <= 0 or period <= 0:  # -1 = no quota
            return None
        return quota / period
    return None
