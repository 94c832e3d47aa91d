"""grpc_api/errors.py: every CoreError as the gRPC status a servicer aborts with.

The details follow google.rpc conventions, so any gRPC client can read them:
ErrorInfo (reason = the contract's ErrorReason name, domain = the service),
BadRequest naming the field when there is one, RetryInfo on overload.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import (
    CoreError,
    DeadlineExceeded,
    InternalError,
    InvalidInput,
    ModelNotFound,
    Overloaded,
    Unavailable,
)
from tandem.grpc_api.errors import ERROR_DOMAIN, to_grpc_status

_DETAIL_TYPES: tuple[type[message.Message], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.RetryInfo,
)


def _details(status: grpc.Status) -> tuple[status_pb2.Status, list[message.Message]]:
    """The packed google.rpc.Status of ``status`` and its details, unpacked in order."""
    metadata = dict(status.trailing_metadata)
    packed = status_pb2.Status.FromString(metadata["grpc-status-details-bin"])
    unpacked = []
    for detail in packed.details:
        for kind in _DETAIL_TYPES:
            if detail.Is(kind.DESCRIPTOR):
                value = kind()
                detail.Unpack(value)
                unpacked.append(value)
                break
        else:
            raise AssertionError(f"unexpected detail {detail.type_url}")
    return packed, unpacked


def _every_core_error() -> list[CoreError]:
    return [
        InvalidInput("is empty", param="texts[0]"),
        ModelNotFound("is not served here", param="model", reason=pb.ERROR_REASON_MODEL_NOT_FOUND),
        Overloaded("the queue is full", retry_after_s=1.0),
        DeadlineExceeded("the deadline passed"),
        Unavailable("the core is shutting down"),
        InternalError("the model failed"),
        CoreError("something else"),
    ]


def test_every_core_error_class_is_mapped() -> None:
    """A new CoreError subclass must be added here (and to _CODES) or it answers INTERNAL."""
    pending: list[type[CoreError]] = [CoreError]
    classes: set[type[CoreError]] = set()
    while pending:
        cls = pending.pop()
        classes.add(cls)
        pending.extend(cls.__subclasses__())
    assert classes == {type(error) for error in _every_core_error()}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInput("is empty", param="texts[0]"), grpc.StatusCode.INVALID_ARGUMENT),
        (ModelNotFound("is not served", param="model"), grpc.StatusCode.NOT_FOUND),
        (Overloaded("the queue is full", retry_after_s=1.0), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (DeadlineExceeded("the deadline passed"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (Unavailable("draining"), grpc.StatusCode.UNAVAILABLE),
        (InternalError("the model failed"), grpc.StatusCode.INTERNAL),
        (CoreError("unclassified"), grpc.StatusCode.INTERNAL),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, CoreError) else value.name,
)
def test_each_error_has_its_status_code_message_and_error_info(
    error: CoreError, code: grpc.StatusCode
) -> None:
    status = to_grpc_status(error)
    assert status.code is code
    assert status.details == error.message
    packed, details = _details(status)
    # The packed status agrees with the one grpcio sends: clients may read either.
    assert (packed.code, packed.message) == (code.value[0], error.message)
    info = details[0]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == pb.ErrorReason.Name(error.reason)
    assert info.domain == ERROR_DOMAIN == "tandem.contract.v1.EmbeddingService"


def test_an_error_with_a_param_names_the_field_in_bad_request() -> None:
    error = InvalidInput("is 9000 bytes", param="texts[3]", reason=pb.ERROR_REASON_TEXT_TOO_LARGE)
    assert error.message == "texts[3] is 9000 bytes"
    status = to_grpc_status(error)
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == error.message
    _, details = _details(status)
    info, bad = details
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert (info.reason, info.domain) == ("ERROR_REASON_TEXT_TOO_LARGE", ERROR_DOMAIN)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("texts[3]", "is 9000 bytes")
    ]


@pytest.mark.parametrize("error", _every_core_error(), ids=lambda e: type(e).__name__)
def test_details_are_exactly_what_the_error_carries(error: CoreError) -> None:
    _, details = _details(to_grpc_status(error))
    kinds = [type(detail) for detail in details]
    expected: list[type[message.Message]] = [error_details_pb2.ErrorInfo]
    if error.param is not None:
        expected.append(error_details_pb2.BadRequest)
    if isinstance(error, Overloaded):
        expected.append(error_details_pb2.RetryInfo)
    assert kinds == expected


@pytest.mark.parametrize(
    ("retry_after_s", "milliseconds"),
    [(2.5, 2500), (0.0004, 1), (0.0, 1), (1.2346, 1235), (60.0, 60_000)],
)
def test_overload_sends_retry_info_in_milliseconds_never_zero(
    retry_after_s: float, milliseconds: int
) -> None:
    status = to_grpc_status(Overloaded("the queue is full", retry_after_s=retry_after_s))
    _, details = _details(status)
    retry = details[-1]
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToMilliseconds() == milliseconds
    assert status.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status.code.value[0] == code_pb2.RESOURCE_EXHAUSTED
