"""Every failure in the documented error shape: {"error": {message, type, param, code}}.

One test per kind of failure the HTTP app can meet: the core's own errors
(one status, type and code per class), body validation, routing refusals
and unexpected exceptions, in a real FastAPI app with the handlers installed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, StrictStr
from starlette.exceptions import HTTPException

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import (
    CoreError,
    DeadlineExceeded,
    InternalError,
    InvalidInput,
    ModelNotFound,
    Overloaded,
    Unavailable,
)
from tandem.http_api.errors import core_error_response, error_response, install_error_handlers
from tandem.http_api.schemas import ErrorReply


def _shape(body: bytes) -> dict[str, Any]:
    """The body, checked to be exactly the documented shape."""
    document: dict[str, Any] = orjson.loads(body)
    ErrorReply.model_validate(document)
    assert set(document) == {"error"}
    assert set(document["error"]) == {"message", "type", "param", "code"}
    return document["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("error", "status", "kind", "code"),
    [
        (InvalidInput("is empty", param="texts[0]"), 400, "invalid_request_error", "invalid_input"),
        (
            InvalidInput("is 9000 bytes", param="texts[3]", reason=pb.ERROR_REASON_TEXT_TOO_LARGE),
            400,
            "invalid_request_error",
            "text_too_large",
        ),
        (
            ModelNotFound("is not served", param="model"),
            404,
            "invalid_request_error",
            "model_not_found",
        ),
        (Overloaded("the queue is full", retry_after_s=2.1), 429, "rate_limit_error", "overloaded"),
        (DeadlineExceeded("too late"), 504, "server_error", "deadline_exceeded"),
        (Unavailable("shutting down"), 503, "server_error", "unavailable"),
        (InternalError("a vector held NaN"), 500, "server_error", "internal_error"),
        (CoreError("no subclass"), 500, "server_error", "internal_error"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, CoreError) else None,
)
def test_each_core_error_has_its_status_type_and_code(
    error: CoreError, status: int, kind: str, code: str
) -> None:
    response = core_error_response(error)
    assert response.status_code == status
    assert response.media_type == "application/json"
    assert _shape(bytes(response.body)) == {
        "message": error.message,
        "type": kind,
        "param": error.param,
        "code": code,
    }
    assert ("retry-after" in response.headers) == isinstance(error, Overloaded)


@pytest.mark.parametrize(("seconds", "header"), [(0.0, "1"), (0.01, "1"), (1.0, "1"), (2.1, "3")])
def test_retry_after_is_whole_seconds_rounded_up_and_never_zero(
    seconds: float, header: str
) -> None:
    response = core_error_response(Overloaded("full", retry_after_s=seconds))
    assert response.headers["retry-after"] == header


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (413, "invalid_request_error"), (429, "rate_limit_error"),
     (499, "invalid_request_error"), (500, "server_error"), (503, "server_error")],
)  # fmt: skip
def test_the_type_follows_the_status(status: int, kind: str) -> None:
    response = error_response(status, "m", reason=pb.ERROR_REASON_HTTP_ERROR)
    assert _shape(bytes(response.body))["type"] == kind


# --- The handlers, in a real app ----------------------------------------------------


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: StrictStr


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr]
    items: list[Item] = []


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = FastAPI()

    @app.post("/body")
    async def body(payload: Body) -> dict[str, int]:
        return {"texts": len(payload.texts)}

    @app.get("/raise/core")
    async def raise_core() -> None:
        raise InvalidInput("is wrong", param="texts[2]", reason=pb.ERROR_REASON_TOO_MANY_TEXTS)

    @app.get("/raise/http")
    async def raise_http() -> None:
        raise HTTPException(401, "who are you", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/raise/unexpected")
    async def raise_unexpected() -> None:
        raise RuntimeError("secret internal detail")

    install_error_handlers(app)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _error(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    return _shape(reply.content)


def test_a_raised_core_error_is_answered_by_its_class(client: TestClient) -> None:
    error = _error(client.get("/raise/core"), 400)
    assert error == {
        "message": "texts[2] is wrong",
        "type": "invalid_request_error",
        "param": "texts[2]",
        "code": "too_many_texts",
    }


@pytest.mark.parametrize(
    ("content", "message", "param"),
    [
        (b'{"texts": ["a", 1]}', "texts[1]: Input should be a valid string", "texts[1]"),
        (b"{}", "texts: Field required", "texts"),
        (b'{"texts": "a"}', "texts: Input should be a valid list", "texts"),
        (b'{"texts": [], "extra": 1}', "unknown field 'extra'", "extra"),
        # Nested locations: list indexes in brackets, fields after a dot.
        (
            b'{"texts": [], "items": [{"text": "a"}, {"text": 2}]}',
            "items[1].text: Input should be a valid string",
            "items[1].text",
        ),
        (
            b'{"texts": [], "items": [{"text": "a", "x": 0}]}',
            "unknown field 'items[0].x'",
            "items[0].x",
        ),
        (b"[1, 2]", "Input should be a valid dictionary or object to extract fields from", None),
    ],
)
def test_a_body_that_fails_validation_names_the_field(
    client: TestClient, content: bytes, message: str, param: str | None
) -> None:
    reply = client.post("/body", content=content, headers={"content-type": "application/json"})
    assert _error(reply, 400) == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": "invalid_input",
    }


def test_a_body_that_is_not_json_is_invalid_json_with_the_parsers_reason(
    client: TestClient,
) -> None:
    reply = client.post(
        "/body", content=b'{"texts": [', headers={"content-type": "application/json"}
    )
    error = _error(reply, 400)
    assert (error["code"], error["param"], error["type"]) == (
        "invalid_json",
        None,
        "invalid_request_error",
    )
    assert error["message"].startswith("the body is not valid JSON: ")
    assert len(error["message"]) > len("the body is not valid JSON: ")


def test_routing_refusals_keep_their_status_and_headers(client: TestClient) -> None:
    assert _error(client.get("/nowhere"), 404) == {
        "message": "Not Found",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_found",
    }
    wrong_method = client.delete("/body")
    assert _error(wrong_method, 405)["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "POST"
    other = client.get("/raise/http")
    assert _error(other, 401) == {
        "message": "who are you",
        "type": "invalid_request_error",
        "param": None,
        "code": "http_error",
    }
    assert other.headers["www-authenticate"] == "Bearer"


def test_an_unexpected_exception_is_500_and_its_details_stay_in_the_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="tandem.http_api.errors"):
        reply = client.get("/raise/unexpected")
    assert _error(reply, 500) == {
        "message": "internal error",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
    assert b"secret" not in reply.content
    (record,) = [r for r in caplog.records if r.name == "tandem.http_api.errors"]
    assert record.message == "unhandled error"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "secret internal detail"
