"""tandem.process._load_model: which sessions the plan gets, and at which priority they open.

A stand-in model records every session it opens (threads, and the nice value
of the opening thread, which ONNX Runtime's pool threads inherit); the real
sessions are tested in tests/model and, served, in tests/test_process.py.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tandem import process
from tandem.capacity import CapacityInputs, plan_capacity
from tandem.settings import Settings


@dataclass(frozen=True)
class Opened:
    threads: int
    nice: int
    thread: str


class RecordingModel:
    opened: list[Opened]

    def __init__(self, *args: Any) -> None:
        self.opened = []

    def open_session(self, intra_op_threads: int) -> Opened:
        tid = threading.get_native_id()
        session = Opened(
            intra_op_threads, os.getpriority(os.PRIO_PROCESS, tid), threading.current_thread().name
        )
        self.opened.append(session)
        return session


def _load(monkeypatch: pytest.MonkeyPatch, *, workers: int, threads: int, adaptive: bool,
          nice: int = 4) -> tuple[RecordingModel, process.Sessions]:  # fmt: skip
    monkeypatch.setattr(process, "MiniLMEmbedding", RecordingModel)
    settings = Settings(model_dir=Path("unused"), adaptive_threads=adaptive, inference_nice=nice)
    plan = plan_capacity(
        CapacityInputs(
            cpus=float(workers * threads), workers=workers, threads_per_worker=threads,
            weights_mib=1, activation_bytes_per_token=1, max_batch_tokens=1024,
            max_inflight_requests=1, max_inflight_bytes=1 << 20, max_texts_per_request=1,
            transit_calls=1, max_request_bytes=1 << 20, adaptive_threads=adaptive,
        )
    )  # fmt: skip
    model, sessions = process._load_model(settings, object(), plan)  # type: ignore[arg-type]
    assert isinstance(model, RecordingModel)
    return model, sessions


def test_single_threaded_workers_share_one_session_and_lone_batches_get_a_wide_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, sessions = _load(monkeypatch, workers=2, threads=1, adaptive=True)
    assert sessions.workers[0] is sessions.workers[1]
    assert sessions.workers[0].threads == 1  # type: ignore[attr-defined]
    assert sessions.wide is not None
    assert sessions.wide.threads == 2  # type: ignore[attr-defined]
    assert len(model.opened) == 2


def test_without_adaptive_threads_there_is_no_wide_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, sessions = _load(monkeypatch, workers=2, threads=2, adaptive=False)
    assert sessions.wide is None
    assert [s.threads for s in model.opened] == [2, 2]


def test_one_worker_has_every_thread_already(monkeypatch: pytest.MonkeyPatch) -> None:
    model, sessions = _load(monkeypatch, workers=1, threads=2, adaptive=True)
    assert sessions.wide is None
    assert [s.threads for s in model.opened] == [2]


def test_sessions_open_on_a_thread_nicer_than_the_caller_which_stays_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    model, _ = _load(monkeypatch, workers=2, threads=1, adaptive=True, nice=4)
    assert {s.nice for s in model.opened} == {min(19, caller + 4)}
    assert all(s.thread != threading.current_thread().name for s in model.opened)
    # The caller (in serve(): a default executor thread, reused later) keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller
