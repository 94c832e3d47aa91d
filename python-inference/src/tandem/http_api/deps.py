"""FastAPI dependencies: the shared objects the app was built with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tandem.lifecycle import Lifecycle
from tandem.ops.metrics import CoreMetrics
from tandem.service import EmbeddingService


@dataclass(frozen=True)
class AppContext:
    lifecycle: Lifecycle
    metrics: CoreMetrics
    default_timeout_s: float
    access_log: bool
    max_body_bytes: int  # what admission reserves for a body of undeclared length


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def get_service(context: Annotated[AppContext, Depends(get_context)]) -> EmbeddingService:
    """The service, or Unavailable (503) while loading or shutting down."""
    return context.lifecycle.service()


ContextDep = Annotated[AppContext, Depends(get_context)]
ServiceDep = Annotated[EmbeddingService, Depends(get_service)]
