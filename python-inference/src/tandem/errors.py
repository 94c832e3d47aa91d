"""Errors of the service layer, independent of any transport.

The gRPC servicer and the HTTP app each map these in one place
(grpc_api/errors.py, http_api/errors.py), so both edges answer the same
failure with the same meaning.
"""

from __future__ import annotations


class CoreError(Exception):
    """Base class: a failure the caller should hear about, with a stable code."""

    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param  # the offending request field, e.g. "texts[3]"
        if code is not None:
            self.code = code


class InvalidInput(CoreError):
    """The request is malformed or breaks a documented limit (gRPC INVALID_ARGUMENT, HTTP 400)."""

    code = "invalid_input"


class ModelNotFound(CoreError):
    """The request names a model this core does not serve (NOT_FOUND, 404)."""

    code = "model_not_found"


class Overloaded(CoreError):
    """The queue is full; retry after ``retry_after_s`` (RESOURCE_EXHAUSTED, 429)."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(CoreError):
    """The caller's deadline passed before the work was done (DEADLINE_EXCEEDED, 504)."""

    code = "deadline_exceeded"


class Unavailable(CoreError):
    """Not ready yet, or draining for shutdown (UNAVAILABLE, 503): try another backend."""

    code = "unavailable"


class InternalError(CoreError):
    """The core failed to compute a correct answer (INTERNAL, 500); details are in its log."""

    code = "internal_error"
