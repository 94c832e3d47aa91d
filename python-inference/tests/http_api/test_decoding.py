"""Bodies that are not UTF-8: invalid_utf8 naming the JSON string that holds the bad bytes.

http_api/test_routes.py sends a few such bodies to the real core; these check
``invalid_utf8``'s paths (nested values, keys, bytes outside any string) and
offsets, and that ``Utf8CheckedRoute`` converts only FastAPI's UTF-8 failure,
leaving every other HTTP error as it was.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.http_api.decoding import Utf8CheckedRoute, invalid_utf8
from tandem.http_api.errors import install_error_handlers


def _error_for(body: bytes) -> tuple[str | None, str]:
    """(param, message) of the error for ``body``, from the real decode failure."""
    with pytest.raises(UnicodeDecodeError) as failed:
        body.decode("utf-8")
    error = invalid_utf8(body, failed.value)
    assert error.reason == pb.ERROR_REASON_INVALID_UTF8
    return error.param, error.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"texts": ["ok", "ok", "x\xff"]}', "texts[2]"),
        (b'{"a": {"b": [{"c": "ok"}, {"c": "\xfe"}]}}', "a.b[1].c"),
        (b'[["ok"], ["ok", "\xff"]]', "[1][1]"),
        (b'"\xff"', "body"),  # the whole document is one string
        (b'{"outer": {"in\xffner": 1}}', "outer"),  # a key names the object holding it
        (b'{"k\xffey": 1}', "body"),  # a key of the top-level object
        # The first string in document order, when several hold bad bytes.
        (b'{"model": "m\xff", "texts": ["\xfe"]}', "model"),
    ],
)
def test_the_string_with_the_bad_bytes_is_named(body: bytes, param: str) -> None:
    assert _error_for(body)[0] == param


def test_the_message_gives_the_byte_and_its_offset_in_the_body() -> None:
    body = b'{"texts": ["ok", "abc\xc3"]}'  # a two-byte sequence cut short
    assert _error_for(body) == (
        "texts[1]",
        "texts[1] is not valid UTF-8 (byte 0xc3 at body offset 21); JSON text must be UTF-8",
    )


@pytest.mark.parametrize(
    ("body", "offset"),
    [
        (b'{"texts": ["ok"]}\xff', 17),  # after the document
        (b'{"texts": \xff["ok"]}', 10),  # between tokens: not JSON either way
        (b'{"texts": ["ok", "\xff', 18),  # in a string, but the document is cut off
    ],
)
def test_bytes_outside_a_parsable_string_name_no_field(body: bytes, offset: int) -> None:
    byte = body[offset]
    assert _error_for(body) == (
        None,
        f"the body is not valid UTF-8 (byte 0x{byte:02x} at offset {offset})",
    )


def test_an_escaped_low_surrogate_elsewhere_does_not_take_the_blame() -> None:
    # texts[0] is the six ASCII characters \udcff (valid UTF-8); the bad byte is in texts[1].
    body = b'{"texts": ["\\udcff", "ok\xff"]}'
    assert _error_for(body)[0] == "texts[1]"


# --- The route class, in a real FastAPI app -----------------------------------------


class Body(BaseModel):
    texts: list[str]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    router = APIRouter(route_class=Utf8CheckedRoute)

    @router.post("/echo")
    async def echo(body: Body) -> dict[str, int]:
        if body.texts == ["teapot"]:
            raise HTTPException(418, "not a coffee pot")
        if body.texts == ["bad request"]:
            raise HTTPException(400, "refused by the handler")
        return {"texts": len(body.texts)}

    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    with TestClient(app) as test_client:
        yield test_client


def _post(client: TestClient, content: bytes) -> tuple[int, dict[str, object]]:
    reply = client.post("/echo", content=content, headers={"content-type": "application/json"})
    body: dict[str, object] = reply.json()
    return reply.status_code, body


def test_the_route_answers_invalid_utf8_in_the_error_shape(client: TestClient) -> None:
    status, body = _post(client, b'{"texts": ["ok", "caf\xe9"]}')  # Latin-1, not UTF-8
    assert status == 400
    assert body == {
        "error": {
            "message": "texts[1] is not valid UTF-8 (byte 0xe9 at body offset 21); "
            "JSON text must be UTF-8",
            "type": "invalid_request_error",
            "param": "texts[1]",
            "code": "invalid_utf8",
        }
    }
    assert _post(client, '{"texts": ["café"]}'.encode()) == (200, {"texts": 1})


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"texts": ["teapot"]}', 418, "http_error"),
        (b'{"texts": ["bad request"]}', 400, "http_error"),  # a 400 without a decode error
        (b'{"texts": ["ok"', 400, "invalid_json"),  # malformed, but valid UTF-8
    ],
)
def test_other_http_errors_pass_through_unchanged(
    client: TestClient, content: bytes, status: int, code: str
) -> None:
    got_status, body = _post(client, content)
    assert got_status == status
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
