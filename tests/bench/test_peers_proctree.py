"""bench/peers/proctree.py: a server's process tree, its CPU and memory from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from peers.proctree import (
    Stat,
    descendants,
    parse_rss_kib,
    parse_stat,
    snapshot,
    tree_cpu_seconds,
    tree_rss_mib,
)


def stat_line(pid: int, comm: str, ppid: int, cpu: tuple[int, int, int, int]) -> str:
    """A /proc/<pid>/stat line; cpu: utime, stime, cutime, cstime (fields 14-17 of proc(5))."""
    rest = ["S", str(ppid)] + ["0"] * 9 + [str(c) for c in cpu] + ["0"] * 30
    return f"{pid} ({comm}) " + " ".join(rest)


def test_parse_stat_reads_the_cpu_fields() -> None:
    assert parse_stat(stat_line(42, "python", 7, (100, 20, 5, 1))) == Stat(42, 7, 100, 20, 5, 1)


def test_parse_stat_survives_a_command_name_with_spaces_and_parentheses() -> None:
    stat = parse_stat(stat_line(9, "a (weird) name", 1, (3, 4, 0, 0)))
    assert (stat.pid, stat.ppid, stat.utime, stat.stime) == (9, 1, 3, 4)


def test_descendants_walks_the_whole_tree_and_nothing_else() -> None:
    stats = [Stat(1, 0, 0, 0, 0, 0), Stat(10, 1, 0, 0, 0, 0), Stat(11, 10, 0, 0, 0, 0),
             Stat(12, 11, 0, 0, 0, 0), Stat(20, 1, 0, 0, 0, 0)]  # fmt: skip
    assert sorted(descendants(10, stats)) == [10, 11, 12]
    assert descendants(12, stats) == [12]


def test_parse_rss() -> None:
    assert parse_rss_kib("Name:\tx\nVmHWM:\t 900 kB\nVmRSS:\t  2048 kB\n") == 2048
    assert parse_rss_kib("Name:\tkthreadd\n") == 0  # kernel threads have none


def test_a_child_process_counts_in_cpu_and_memory() -> None:
    # A parent that starts a child burning CPU and holding 64 MiB: both belong to the tree.
    code = (
        "import subprocess, sys;"
        "subprocess.run([sys.executable, '-c', "
        "'import time; b = bytearray(64 << 20); e = time.process_time() + 0.5\\n"
        "while time.process_time() < e: pass\\n"
        "time.sleep(30)'])"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and tree_cpu_seconds([parent.pid]) < 0.5:
            time.sleep(0.1)
        assert tree_cpu_seconds([parent.pid]) >= 0.5
        assert tree_rss_mib([parent.pid]) > 64
        assert tree_rss_mib([os.getpid()]) > tree_rss_mib([parent.pid])  # ours includes it
    finally:
        for pid in descendants(parent.pid, snapshot().values()):
            os.kill(pid, signal.SIGKILL)  # the child, then the parent: both ours
        parent.wait()


def test_a_process_that_is_gone_counts_as_nothing() -> None:
    done = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert done.returncode == 0
    assert tree_rss_mib([2**22 + 12345]) == 0
    assert tree_cpu_seconds([2**22 + 12345]) == pytest.approx(0.0)
