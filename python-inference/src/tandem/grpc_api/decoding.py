"""Request decoding that names the field with invalid UTF-8 instead of failing blindly.

Protobuf ``string`` fields must hold valid UTF-8, and protobuf-python
(upb) refuses a message that breaks this with a DecodeError that names no
field. Raised from a request deserializer, grpcio turns that into INTERNAL
"Exception deserializing request!", which reads like a server bug and tells
the caller nothing. So the deserializer returns an ``UndecodableRequest``
instead, and the servicer answers INVALID_ARGUMENT naming the field
(``texts[3]``). Bytes are never replaced: a text that is not valid UTF-8 is
refused, not embedded as something else.

Parsing waits for admission: the server's deserializer only wraps the bytes
it received (``RawEmbedRequest``), the servicer enters the admission gate
with their size (an upper bound of the texts' UTF-8 bytes) and parses only
once admitted. A call refused for capacity so costs its raw message and
nothing more: no parsed message, no Python strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import empty_pb2, unknown_fields
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

from tandem.contract.v1 import embedding_pb2 as pb

_LENGTH_DELIMITED = 2


@dataclass(frozen=True, slots=True)
class UndecodableRequest:
    """A request message that could not be parsed; ``param`` names the bad field when known."""

    description: str  # what is wrong, without naming the field (CoreError's description)
    param: str | None = None  # the field, e.g. texts[3], when known
    reason: pb.ErrorReason = pb.ERROR_REASON_INVALID_MESSAGE


@dataclass(frozen=True, slots=True)
class RawEmbedRequest:
    """An EmbedRequest as received, not yet parsed (parse after admission)."""

    data: bytes

    def parse(self) -> pb.EmbedRequest | UndecodableRequest:
        return decode_embed_request(self.data)


def read_embed_request(data: bytes) -> RawEmbedRequest:
    """The Embed request deserializer: keep the bytes, parse nothing yet."""
    return RawEmbedRequest(data)


def decode_embed_request(data: bytes) -> pb.EmbedRequest | UndecodableRequest:
    try:
        return pb.EmbedRequest.FromString(data)
    except DecodeError as exc:
        return _explain(data, exc)


def _explain(data: bytes, error: DecodeError) -> UndecodableRequest:
    """Find the top-level string field whose bytes are not UTF-8 (the usual cause)."""
    descriptor = pb.EmbedRequest.DESCRIPTOR
    try:
        # Parsed as a message with no fields, every field is an unknown field
        # with its raw bytes: the same wire format, without the UTF-8 check.
        fields = unknown_fields.UnknownFieldSet(empty_pb2.Empty.FromString(data))
    except DecodeError:
        return UndecodableRequest(f"the request is not a valid {descriptor.name}: {error}")
    seen: dict[int, int] = {}
    for position in range(len(fields)):
        field = fields[position]
        index = seen.get(field.field_number, 0)
        seen[field.field_number] = index + 1
        spec = descriptor.fields_by_number.get(field.field_number)
        if spec is None or spec.type != FieldDescriptor.TYPE_STRING:
            continue
        if field.wire_type != _LENGTH_DELIMITED:
            continue
        try:
            bytes(field.data).decode("utf-8")
        except UnicodeDecodeError as bad:
            param = f"{spec.name}[{index}]" if spec.is_repeated else spec.name
            return UndecodableRequest(
                f"is not valid UTF-8 (byte 0x{bad.object[bad.start]:02x} at offset "
                f"{bad.start}); protobuf string fields must be UTF-8",
                param,
                pb.ERROR_REASON_INVALID_UTF8,
            )
    return UndecodableRequest(f"the request is not a valid {descriptor.name}: {error}")
