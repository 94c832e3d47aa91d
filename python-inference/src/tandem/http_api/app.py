"""The FastAPI application factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tandem import __version__
from tandem.http_api.deps import AppContext
from tandem.http_api.errors import install_error_handlers
from tandem.http_api.middleware import JsonBodyMiddleware, RequestIdMiddleware
from tandem.http_api.routes import embed, health


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The input limits (settings) the app enforces and its OpenAPI document states."""

    max_body_bytes: int
    max_texts: int
    max_text_bytes: int


def create_app(context: AppContext, limits: ApiLimits) -> FastAPI:
    """Build the app around already-created resources (the server owns their lifetime)."""
    app = FastAPI(
        title="Tandem core",
        version=__version__,
        description="Sentence embeddings (all-MiniLM-L6-v2 on ONNX Runtime). "
        "Errors: {'error': {'message', 'type', 'param', 'code'}}.",
    )
    app.state.context = context
    app.include_router(embed.router)
    app.include_router(health.router)
    install_error_handlers(app)
    # Outermost first: the request id must be set before anything logs.
    app.add_middleware(JsonBodyMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    _document_limits(app, limits)
    return app


def _document_limits(app: FastAPI, limits: ApiLimits) -> None:
    """Put the configured limits into the OpenAPI schema of POST /v1/embed.

    The service checks them (the same checks for gRPC, with precise error
    codes such as too_many_texts), so the body model does not validate them;
    but schema-driven clients and fuzzers (schemathesis) need them in the
    schema to generate requests the core accepts. JSON Schema's maxLength
    counts characters, the limit counts UTF-8 bytes: a character is at least
    one byte, so maxLength = max_text_bytes is the tightest bound it can state,
    and the description says the rest.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            texts = schema["components"]["schemas"]["EmbedBody"]["properties"]["texts"]
            texts.update(minItems=1, maxItems=limits.max_texts)
            texts["items"].update(minLength=1, maxLength=limits.max_text_bytes)
            texts["description"] += (
                f" Limits here: at most {limits.max_texts} texts, each at most "
                f"{limits.max_text_bytes} bytes of UTF-8; the whole body at most "
                f"{limits.max_body_bytes} bytes."
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
