"""One source for the request limits: the gateway's edge limits and the core's text
limit and gRPC receive limit all come from requestLimits (and the texts per request
from core.capacity.maxTextsPerRequest), and the receive limit is the gateway's send
limit computed by the same formula as go-gateway/internal/upstream/msgsize.go."""

from __future__ import annotations

import pytest

from tests.chart.helm import render, render_error


def grpc_send_limit(texts: int, text_bytes: int, body_bytes: int) -> int:
    """upstream.MessageLimitsFor(...).Send, written out again on purpose."""
    varint = 1 if text_bytes < 1 << 7 else 2 if text_bytes < 1 << 14 else 3
    return min(texts * text_bytes, body_bytes) + texts * (1 + varint) + 1024


def test_defaults_match_the_gateways_own_numbers() -> None:
    rendered = render()
    core, gateway = rendered.env("core"), rendered.env("gateway")
    # TestMessageLimitsFollowTheRequestLimits pins the same number in Go.
    assert int(core["TANDEM_CORE_MAX_REQUEST_BYTES"]) == 256 * 8192 + 256 * 3 + 1024 == 2_098_944
    assert gateway["TANDEM_GATEWAY_MAX_INPUTS"] == core["TANDEM_CORE_MAX_TEXTS_PER_REQUEST"]
    assert gateway["TANDEM_GATEWAY_MAX_TEXT_BYTES"] == core["TANDEM_CORE_MAX_TEXT_BYTES"]
    assert gateway["TANDEM_GATEWAY_MAX_BODY_BYTES"] == "4194304"


@pytest.mark.parametrize(
    ("texts", "text_bytes", "body_bytes"),
    [
        (256, 8192, 65536),  # the body is the bound
        (16, 100, 4 << 20),  # one-byte varint
        (4096, 1 << 20, 32 << 20),  # the largest the schema allows: within the core's 64 MiB
    ],
)
def test_core_receive_limit_follows_the_request_limits(
    texts: int, text_bytes: int, body_bytes: int
) -> None:
    rendered = render(
        values={
            "requestLimits": {"maxBodyBytes": body_bytes, "maxTextBytes": text_bytes},
            "core": {"capacity": {"maxTextsPerRequest": texts, "maxInflightBytes": 1 << 30}},
        }
    )
    core, gateway = rendered.env("core"), rendered.env("gateway")
    want = grpc_send_limit(texts, text_bytes, body_bytes)
    assert int(core["TANDEM_CORE_MAX_REQUEST_BYTES"]) == want
    assert want <= 64 << 20  # the core's own bound on max_request_bytes
    assert int(gateway["TANDEM_GATEWAY_MAX_INPUTS"]) == texts
    assert int(gateway["TANDEM_GATEWAY_MAX_TEXT_BYTES"]) == text_bytes
    assert int(gateway["TANDEM_GATEWAY_MAX_BODY_BYTES"]) == body_bytes


def test_derived_limits_cannot_be_overridden_by_extra_settings() -> None:
    for component, name in [
        ("gateway", "TANDEM_GATEWAY_MAX_BODY_BYTES"),
        ("core", "TANDEM_CORE_MAX_REQUEST_BYTES"),
    ]:
        message = render_error(values={component: {"extraSettings": {name: "1"}}})
        assert f"invalid propertyName '{name}'" in message


def test_trusted_proxies() -> None:
    assert render().env("gateway")["TANDEM_GATEWAY_TRUSTED_PROXIES"] == (
        "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
    )
    ingress = render(values={"gateway": {"settings": {"trustedProxies": ["10.244.0.0/16", "::1"]}}})
    assert ingress.env("gateway")["TANDEM_GATEWAY_TRUSTED_PROXIES"] == "10.244.0.0/16,::1"
    # An empty variable would mean "unset" (the default): none is spelled out.
    nobody = render(values={"gateway": {"settings": {"trustedProxies": []}}})
    assert nobody.env("gateway")["TANDEM_GATEWAY_TRUSTED_PROXIES"] == "none"
    assert "trustedProxies" in render_error(
        values={"gateway": {"settings": {"trustedProxies": ["ingress-nginx"]}}}
    )
    assert "clientIpHeader" in render_error(
        values={"gateway": {"settings": {"clientIpHeader": "X-Real-IP"}}}
    )
