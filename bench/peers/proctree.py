"""Memory and CPU of a whole process tree, read from /proc.

A server is measured as everything it runs: the process we started and all of
its descendants (a launcher's children, worker processes). CPU time comes from
the kernel's counters, never from the load generator's clock, so it does not
depend on where the load comes from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/<pid>/stat the benchmark reads, CPU times in clock ticks."""

    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int  # reaped children's, so CPU of workers that exited still counts
    cstime: int


def parse_stat(text: str) -> Stat:
    """Parse /proc/<pid>/stat; the command name may hold spaces and parentheses."""
    head, tail = text.rsplit(")", 1)
    fields = tail.split()  # fields[0] is the state (field 3 of proc(5))
    return Stat(
        pid=int(head.split("(", 1)[0]),
        ppid=int(fields[1]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
    )


def descendants(root: int, stats: Iterable[Stat]) -> list[int]:
    """``root`` and every process below it, given a snapshot of all processes."""
    children: dict[int, list[int]] = {}
    for s in stats:
        children.setdefault(s.ppid, []).append(s.pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def parse_rss_kib(status: str) -> int:
    """VmRSS of /proc/<pid>/status in KiB (0 for a kernel thread or a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def snapshot() -> dict[int, Stat]:
    """Every process's stat, by pid."""
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue  # exited while we read
            stats[stat.pid] = stat
    return stats


def tree_cpu_seconds(roots: Iterable[int]) -> float:
    """User + system CPU seconds of every live process under ``roots``, plus what
    their reaped children used."""
    stats = snapshot()
    ticks = 0
    for root in roots:
        for pid in descendants(root, stats.values()):
            s = stats.get(pid)
            if s is not None:
                ticks += s.utime + s.stime + s.cutime + s.cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_mib(roots: Iterable[int]) -> float:
    """Resident memory of every process under ``roots`` (shared pages counted once
    per process, as RSS does)."""
    stats = snapshot()
    kib = 0
    for root in roots:
        for pid in descendants(root, stats.values()):
            try:
                kib += parse_rss_kib((PROC / str(pid) / "status").read_text())
            except OSError:
                continue
    return kib / 1024
