"""CoreError -> gRPC status with rich details, in one place.

Details follow google.rpc conventions so any gRPC client can read them:
BadRequest names the offending field (the proto's field names, e.g.
``texts[3]``), ErrorInfo carries the contract's ErrorReason as its reason (the
enum value's name) with the service's name as domain, RetryInfo says when to
retry after RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import (
    CoreError,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    Overloaded,
    Unavailable,
    reason_name,
)

# The ErrorInfo domain: the service's full name, as AIP-193 asks, so a caller
# can tell the core's reasons from those of a proxy on the way.
ERROR_DOMAIN = pb.DESCRIPTOR.services_by_name["EmbeddingService"].full_name

_CODES: dict[type[CoreError], int] = {
    InvalidInput: code_pb2.INVALID_ARGUMENT,
    ModelNotFound: code_pb2.NOT_FOUND,
    Overloaded: code_pb2.RESOURCE_EXHAUSTED,
    DeadlineExceeded: code_pb2.DEADLINE_EXCEEDED,
    Unavailable: code_pb2.UNAVAILABLE,
}


def to_grpc_status(exc: CoreError) -> grpc.Status:
    """The status a servicer aborts with for ``exc``."""
    details = [error_details_pb2.ErrorInfo(reason=reason_name(exc.reason), domain=ERROR_DOMAIN)]
    if exc.param is not None:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=exc.param, description=exc.description
                    )
                ]
            )
        )
    if isinstance(exc, Overloaded):
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(1, round(exc.retry_after_s * 1000)))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    status = status_pb2.Status(
        code=_CODES.get(type(exc), code_pb2.INTERNAL), message=exc.message, details=packed
    )
    return rpc_status.to_status(status)
