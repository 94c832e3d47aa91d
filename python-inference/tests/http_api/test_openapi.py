"""The core's OpenAPI document states its limits, so schema-driven clients stay inside them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tandem.http_api.app import ApiLimits, create_app
from tandem.http_api.deps import AppContext
from tandem.lifecycle import Lifecycle
from tandem.ops.logs import _SAFE_REQUEST_ID, accept_request_id
from tandem.ops.metrics import CoreMetrics
from tandem.settings import Settings


def _openapi(settings: Settings) -> dict[str, Any]:
    metrics = CoreMetrics()
    app = create_app(
        AppContext(
            Lifecycle(metrics),
            metrics,
            settings.default_timeout_s,
            access_log=False,
            max_body_bytes=settings.max_request_bytes,
        ),
        ApiLimits(
            settings.max_request_bytes, settings.max_texts_per_request, settings.max_text_bytes
        ),
    )
    schema: dict[str, Any] = app.openapi()
    return schema


@pytest.mark.parametrize("overrides", [{}, {"max_texts_per_request": 17, "max_text_bytes": 100}])
def test_texts_carry_the_configured_limits(overrides: dict[str, int]) -> None:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    texts = _openapi(settings)["components"]["schemas"]["EmbedBody"]["properties"]["texts"]
    assert texts["maxItems"] == settings.max_texts_per_request
    assert texts["minItems"] == 1
    assert texts["items"]["maxLength"] == settings.max_text_bytes
    assert texts["items"]["minLength"] == 1
    assert f"{settings.max_text_bytes} bytes of UTF-8" in texts["description"]


def test_headers_are_documented_with_their_formats() -> None:
    operation = _openapi(Settings())["paths"]["/v1/embed"]["post"]
    params = {p["name"].lower(): p for p in operation["parameters"]}
    timeout = params["x-timeout-ms"]["schema"]
    assert (timeout.get("minimum"), timeout.get("maximum")) == (1, 3_600_000) or any(
        (s.get("minimum"), s.get("maximum")) == (1, 3_600_000) for s in timeout.get("anyOf", [])
    )
    request_id = params["x-request-id"]
    assert request_id["in"] == "header"
    # The documented format is exactly what the middleware keeps.
    assert request_id["schema"]["pattern"] == _SAFE_REQUEST_ID.pattern
    pattern = re.compile(request_id["schema"]["pattern"])
    for candidate in ("req-1", "a" * 128, "a" * 129, "bad id", "ünï"):
        assert (accept_request_id(candidate) == candidate) == bool(pattern.fullmatch(candidate))


def test_error_responses_are_documented() -> None:
    responses = _openapi(Settings())["paths"]["/v1/embed"]["post"]["responses"]
    assert {"400", "404", "413", "415", "429", "503", "504"} <= set(responses)
    assert "invalid_utf8" in responses["400"]["description"]
