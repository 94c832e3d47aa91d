"""Errors of the service layer, independent of any transport, and their reasons.

Every error carries a reason from the contract's ``ErrorReason`` enum
(proto/tandem/contract/v1/embedding.proto). This module is the one place
that turns a reason into text: the gRPC servicer sends the enum value's name
as ``google.rpc.ErrorInfo.reason`` and the HTTP app sends ``json_code(reason)``
as the body's ``code`` (grpc_api/errors.py, http_api/errors.py), so both
edges answer the same failure with the same meaning.
"""

from __future__ import annotations

from tandem.contract.v1 import embedding_pb2 as pb

_PREFIX = "ERROR_REASON_"

# ErrorReason -> the documented `code` of the HTTP API's error body:
# ERROR_REASON_TOO_MANY_TEXTS -> "too_many_texts". Derived from the enum, so
# a new reason has its code the moment it is generated.
JSON_CODES: dict[int, str] = {
    value: name.removeprefix(_PREFIX).lower()
    for name, value in pb.ErrorReason.items()
    if value != pb.ERROR_REASON_UNSPECIFIED
}


def json_code(reason: pb.ErrorReason) -> str:
    """The HTTP API's error code for ``reason``, e.g. "context_length_exceeded"."""
    return JSON_CODES[reason]


def reason_name(reason: pb.ErrorReason) -> str:
    """The ErrorInfo reason for ``reason``: the enum value's name (AIP-193)."""
    return pb.ErrorReason.Name(reason)


class CoreError(Exception):
    """Base class: a failure the caller should hear about, with a stable reason.

    With a ``param`` (the offending request field in the contract's names,
    e.g. "texts[3]"), ``description`` says what is wrong with that field
    without naming it ("is empty"): it becomes the BadRequest violation's
    description, and ``message`` ("texts[3] is empty") the status message.
    """

    reason: pb.ErrorReason = pb.ERROR_REASON_INTERNAL_ERROR

    def __init__(
        self,
        description: str,
        *,
        param: str | None = None,
        reason: pb.ErrorReason | None = None,
    ) -> None:
        message = f"{param} {description}" if param else description
        super().__init__(message)
        self.message = message
        self.description = description
        self.param = param
        if reason is not None:
            self.reason = reason

    @property
    def code(self) -> str:
        """The reason as the HTTP API's error code (also the metrics outcome)."""
        return json_code(self.reason)


class InvalidInput(CoreError):
    """The request is malformed or breaks a documented limit (gRPC INVALID_ARGUMENT, HTTP 400)."""

    reason = pb.ERROR_REASON_INVALID_INPUT


class ModelNotFound(CoreError):
    """The request names a model this core does not serve (NOT_FOUND, 404)."""

    reason = pb.ERROR_REASON_MODEL_NOT_FOUND


class Overloaded(CoreError):
    """The queue is full; retry after ``retry_after_s`` (RESOURCE_EXHAUSTED, 429)."""

    reason = pb.ERROR_REASON_OVERLOADED

    def __init__(self, description: str, *, retry_after_s: float) -> None:
        super().__init__(description)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(CoreError):
    """The caller's deadline passed before the work was done (DEADLINE_EXCEEDED, 504)."""

    reason = pb.ERROR_REASON_DEADLINE_EXCEEDED


class Unavailable(CoreError):
    """Not ready yet, or draining for shutdown (UNAVAILABLE, 503): try another backend."""

    reason = pb.ERROR_REASON_UNAVAILABLE


class InternalError(CoreError):
    """The core failed to compute a correct answer (INTERNAL, 500); details are in its log."""

    reason = pb.ERROR_REASON_INTERNAL_ERROR
