"""tandem.ops.priority: a thread lowers its own priority, never another's."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import pytest

from tandem.ops import priority


def _in_thread(work: Callable[[], int]) -> tuple[int, int]:
    """Run ``work`` on a fresh thread: (its result, the thread's nice value afterwards)."""
    out: list[int] = []

    def run() -> None:
        result = work()
        out.extend([result, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())])

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return out[0], out[1]


def _mine() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_raises_the_calling_threads_nice_value_by_the_steps_only() -> None:
    before = _mine()
    returned, after = _in_thread(lambda: priority.lower_thread_priority(3))
    assert returned == after == min(priority.MAX_NICE, before + 3)
    assert _mine() == before  # the caller's own thread is untouched


def test_caps_at_the_highest_nice_value() -> None:
    returned, after = _in_thread(lambda: priority.lower_thread_priority(100))
    assert returned == after == priority.MAX_NICE


def test_zero_steps_changes_nothing() -> None:
    before = _mine()
    returned, after = _in_thread(lambda: priority.lower_thread_priority(0))
    assert returned == after == before


def test_a_refused_call_is_logged_and_the_thread_runs_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: int) -> None:
        raise PermissionError("sandbox says no")

    monkeypatch.setattr(priority.os, "setpriority", refuse)
    before = _mine()
    with caplog.at_level(logging.WARNING, logger="tandem.ops.priority"):
        returned, after = _in_thread(lambda: priority.lower_thread_priority(5))
    assert (returned, after) == (0, before)
    assert "cannot lower the priority" in caplog.text
