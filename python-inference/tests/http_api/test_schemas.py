"""schemas.py: the body model is strict (no coercion), closed (no unknown fields), defaults on."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tandem.http_api.schemas import EmbedBody, ErrorReply, HealthReply


def test_defaults_normalise_and_truncate_for_the_served_model() -> None:
    body = EmbedBody.model_validate_json(b'{"texts": ["a"]}')
    assert (body.texts, body.model, body.normalize, body.truncate) == (["a"], None, True, True)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"texts": [1]}, "texts.0"),  # not coerced to "1"
        ({"texts": "a"}, "texts"),
        ({"texts": ["a"], "normalize": "true"}, "normalize"),
        ({"texts": ["a"], "normalize": 1}, "normalize"),
        ({"texts": ["a"], "truncate": None}, "truncate"),
        ({"texts": ["a"], "model": 7}, "model"),
        ({"texts": ["a"], "normalise": True}, "normalise"),  # a typo is refused, not ignored
        ({}, "texts"),
    ],
)
def test_wrong_types_and_unknown_fields_are_refused(document: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        EmbedBody.model_validate(document)
    assert [".".join(map(str, e["loc"])) for e in refused.value.errors()] == [field]


def test_the_error_shape_always_has_its_four_keys() -> None:
    reply = ErrorReply.model_validate(
        {"error": {"message": "m", "type": "server_error", "param": None, "code": None}}
    )
    assert set(reply.model_dump()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(ValidationError):
        ErrorReply.model_validate({"error": {"message": "m", "type": "server_error"}})
    assert HealthReply(status="ok").model_dump() == {"status": "ok", "reason": None}
