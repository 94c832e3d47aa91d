"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from tandem import __version__
from tandem.http_api.deps import AppContext
from tandem.http_api.errors import install_error_handlers
from tandem.http_api.middleware import JsonBodyMiddleware, RequestIdMiddleware
from tandem.http_api.routes import embed, health


def create_app(context: AppContext, max_body_bytes: int) -> FastAPI:
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
    app.add_middleware(JsonBodyMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app
