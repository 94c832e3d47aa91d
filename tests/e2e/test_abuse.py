"""Attacks from outside, against real processes: every bound holds and the stack recovers.

Each row of the "Hold under abuse" table (docs/threat-model.md) has a test
here that sends the worst input the limits allow and asserts the status
codes, the peak memory (read from /proc) and that the next request succeeds.
All traffic goes to 127.0.0.1; every load loop is bounded in count and time.
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_bytes(pid: int) -> int:
    """The process's high-water resident set (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def current_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --- Gateway: memory bounded by arithmetic; invalid UTF-8 ------------------------


# --- Core: admission in time and in memory -----------------------------------------


# --- Gateway to core: a busy core is not a sick core; a sick core is isolated -------


# --- Edge details: client identity, bad keys, key rotation ---------------------------
