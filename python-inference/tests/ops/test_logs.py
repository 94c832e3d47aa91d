"""ops/logs.py: one JSON object per line, with the call's request id and trace, and nothing else.

The access log names what a request was (counts, sizes, timings), never what
it said: texts and credentials stay out of every line.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from support import RunningCore

from tandem.ops.logs import JsonFormatter, accept_request_id, configure_logging, request_id_var


def _line(record: logging.LogRecord) -> dict[str, Any]:
    text = JsonFormatter().format(record)
    assert "\n" not in text  # one record, one line
    entry: dict[str, Any] = json.loads(text)
    return entry


def _record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("tandem.test")
    return logger.makeRecord(
        "tandem.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )


def test_a_line_has_time_level_logger_message_and_the_extras() -> None:
    record = _record("hello %s", "world", outcome="ok", texts=3, startup_seconds=1.5)
    record.created = 0.25  # 1970-01-01T00:00:00.250Z
    record.msecs = 250.0
    entry = _line(record)
    assert entry == {
        "time": "1970-01-01T00:00:00.250Z",
        "level": "WARNING",
        "logger": "tandem.test",
        "message": "hello world",
        "outcome": "ok",
        "texts": 3,
        "startup_seconds": 1.5,
    }


def test_the_request_id_of_the_call_is_on_its_lines_only() -> None:
    token = request_id_var.set("req-7")
    try:
        assert _line(_record())["request_id"] == "req-7"
    finally:
        request_id_var.reset(token)
    assert "request_id" not in _line(_record())


def test_lines_inside_a_span_carry_its_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    assert "trace_id" not in _line(_record())
    with tracer.start_as_current_span("work") as span:
        entry = _line(_record())
    context = span.get_span_context()
    assert entry["trace_id"] == f"{context.trace_id:032x}"
    assert entry["span_id"] == f"{context.span_id:016x}"


def test_exceptions_and_odd_values_stay_on_one_json_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = _record("failed", path=object(), who="é")
        record.exc_info = sys.exc_info()
    entry = _line(record)
    assert "ValueError: bad" in entry["exception"]
    assert entry["path"].startswith("<object object")  # str() of what JSON cannot encode
    assert entry["who"] == "é"


@pytest.mark.parametrize(
    ("candidate", "kept"),
    [
        ("req-42", True),
        ("a.b:c_d-9", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("bad id", False),
        ('x", "level": "ERROR', False),
        ("line\nbreak", False),
        ("", False),
        (None, False),
    ],
)
def test_only_safe_request_ids_are_kept(candidate: str | None, kept: bool) -> None:
    accepted = accept_request_id(candidate)
    assert (accepted == candidate) is kept
    assert len(accepted) <= 128
    if not kept:
        assert len(accepted) == 32
        assert accepted != accept_request_id(candidate)  # a fresh id each time


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    named = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error")]
    uvicorn = [(logger, logger.handlers[:], logger.propagate) for logger in named]
    access = logging.getLogger("uvicorn.access").disabled
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for logger, handlers, propagate in uvicorn:
        logger.handlers[:] = handlers
        logger.propagate = propagate
    logging.getLogger("uvicorn.access").disabled = access


def test_configure_logging_routes_every_logger_to_one_json_stream(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(io.StringIO()))
    configure_logging("INFO", "json")
    logging.getLogger("tandem.x").info("ours")
    logging.getLogger("uvicorn.error").info("uvicorn's")
    logging.getLogger("grpc").info("grpc's")
    logging.getLogger("uvicorn.access").info("an access line")
    logging.getLogger("tandem.x").debug("below the level")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["logger"], e["message"]) for e in lines] == [
        ("tandem.x", "ours"), ("uvicorn.error", "uvicorn's"), ("grpc", "grpc's")
    ]  # fmt: skip
    assert logging.getLogger("uvicorn.error").handlers == []


def test_text_format_is_one_plain_line(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("WARNING", "text")
    logging.getLogger("tandem.x").warning("careful")
    assert stream.getvalue().rstrip().endswith("WARNING tandem.x: careful")


SECRET_TEXT = "my card number is 4111-1111-1111-1111"
SECRET_TOKEN = "Bearer sk-do-not-log-me"


def test_access_log_lines_name_the_request_not_its_texts_or_credentials(core: RunningCore) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        reply = httpx.post(
            f"{core.http_url}/v1/embed",
            json={"texts": [SECRET_TEXT, "another"]},
            headers={"Authorization": SECRET_TOKEN, "X-Request-Id": "logged-request"},
            timeout=30,
        )
        assert reply.status_code == 200
        refused = httpx.post(
            f"{core.http_url}/v1/embed",
            json={"texts": [SECRET_TEXT], "model": SECRET_TEXT},
            headers={"Authorization": SECRET_TOKEN},
            timeout=30,
        )
        assert refused.status_code == 404
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = stream.getvalue()
    assert "4111" not in text
    assert "sk-do-not-log-me" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    access = [e for e in entries if e["message"] == "request"]
    assert [(e["outcome"], e.get("request_id")) for e in access][:1] == [("ok", "logged-request")]
    assert (access[0]["transport"], access[0]["texts"]) == ("http", 2)
    assert access[1]["outcome"] == "model_not_found"
