"""Bodies that are not UTF-8: 400 naming the field, never a silent replacement.

JSON text must be UTF-8 (RFC 8259, section 8.1). FastAPI decodes the body
strictly, but a UnicodeDecodeError is not a JSONDecodeError, so FastAPI
answers it with a bare HTTPException(400, "There was an error parsing the
body") that names no field. ``Utf8CheckedRoute`` catches exactly that case
(the HTTPException caused by a UnicodeDecodeError) and raises InvalidInput
naming the string that holds the bad bytes, e.g. ``texts[1]``. It follows
FastAPI's documented pattern for a custom APIRoute that handles errors with
the request body at hand (the body is cached on the request by then).
"""

from __future__ import annotations

import codecs
import json
import secrets
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import InvalidInput

# Bytes that are not UTF-8 decode to this marker (codec error handler
# below), so the JSON parse that follows shows which string held them. It is
# random per process: no JSON text can spell it, not even with \u escapes
# (surrogateescape's U+DC80..U+DCFF could be: a valid "\udcff" in one string
# then took the blame for a bad byte in another).
_MARKER = f"\ue000{secrets.token_hex(8)}\ue000"
_ERRORS = "tandem-invalid-utf8-marker"


def _mark(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return _MARKER, error.end


codecs.register_error(_ERRORS, _mark)


class Utf8CheckedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_checked(request: Request) -> Response:
            try:
                return await handle(request)
            except HTTPException as exc:
                if not isinstance(exc.__cause__, UnicodeDecodeError):
                    raise
                raise invalid_utf8(await request.body(), exc.__cause__) from exc

        return handle_checked


def invalid_utf8(body: bytes, error: UnicodeDecodeError) -> InvalidInput:
    """The error for ``body``, naming the first JSON string with bytes that are not UTF-8."""
    offending = error.object[error.start]
    try:
        document = json.loads(body.decode("utf-8", errors=_ERRORS))
    except ValueError:
        document = None
    param = next(_escaped_paths(document, ()), None) if document is not None else None
    if param is None:
        return InvalidInput(
            f"the body is not valid UTF-8 (byte 0x{offending:02x} at offset {error.start})",
            reason=pb.ERROR_REASON_INVALID_UTF8,
        )
    return InvalidInput(
        f"is not valid UTF-8 (byte 0x{offending:02x} at body offset {error.start}); "
        "JSON text must be UTF-8",
        param=param,
        reason=pb.ERROR_REASON_INVALID_UTF8,
    )


def _escaped_paths(value: object, path: tuple[str | int, ...]) -> Iterator[str]:
    """Paths ("texts[1]", "model") of strings (or keys) that held undecodable bytes."""
    if isinstance(value, str):
        if _MARKER in value:
            yield _format(path) or "body"
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _escaped_paths(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if _MARKER in key:
                yield _format(path) or "body"  # a key itself: name its object
            yield from _escaped_paths(item, (*path, key))


def _format(path: tuple[str | int, ...]) -> str:
    """("texts", 3) -> "texts[3]"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
