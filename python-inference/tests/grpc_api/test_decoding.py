"""Decoding the Embed request: parse only after admission, name the field that is not UTF-8.

grpc_api/test_servicer.py checks the status the caller gets for a few bad
messages; these check the decoder itself on the wire format: which field and
index it names, the byte and offset it reports, what it leaves alone.
"""

from __future__ import annotations

import time

import pytest

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.grpc_api.decoding import (
    RawEmbedRequest,
    UndecodableRequest,
    decode_embed_request,
    read_embed_request,
)

UTF8_SUFFIX = "protobuf string fields must be UTF-8"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(number: int, payload: bytes) -> bytes:
    """One length-delimited field, as any protobuf encoder writes it."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


TEXTS, MODEL = 1, 2
# texts[0], model, texts[1]: a model field between the texts.
INTERLEAVED = _string(TEXTS, b"a") + _string(MODEL, b"m") + _string(TEXTS, b"b")


def test_the_deserializer_keeps_the_bytes_and_parses_nothing() -> None:
    # Admission happens between these two steps: even garbage is not looked at yet.
    garbage = b"\xff\xff\xff not protobuf"
    raw = read_embed_request(garbage)
    assert raw == RawEmbedRequest(garbage)
    assert raw.data is garbage
    parsed = raw.parse()
    assert isinstance(parsed, UndecodableRequest)
    assert parsed.reason == pb.ERROR_REASON_INVALID_MESSAGE


def test_a_valid_message_parses_to_the_request() -> None:
    request = pb.EmbedRequest(
        texts=["naïve café", "日本語"],
        model="all-MiniLM-L6-v2",
        normalize=False,
        truncation=pb.TRUNCATION_POLICY_REJECT,
    )
    parsed = read_embed_request(request.SerializeToString()).parse()
    assert parsed == request
    assert isinstance(parsed, pb.EmbedRequest)
    assert parsed.HasField("normalize")


@pytest.mark.parametrize(
    ("data", "param", "byte", "offset"),
    [
        (_string(TEXTS, b"ok") + _string(TEXTS, b"abc\xff\xfe"), "texts[1]", 0xFF, 3),
        (_string(TEXTS, b"caf\xc3"), "texts[0]", 0xC3, 3),  # a truncated two-byte sequence
        (_string(TEXTS, b"\xed\xa0\x80"), "texts[0]", 0xED, 0),  # an encoded surrogate
        (_string(TEXTS, b"\xc0\xaf"), "texts[0]", 0xC0, 0),  # an overlong "/"
        (_string(TEXTS, b"ok") + _string(MODEL, b"mini\xffLM"), "model", 0xFF, 4),
        # The index counts the texts only, however the fields are interleaved.
        (INTERLEAVED + _string(TEXTS, b"\x80c"), "texts[2]", 0x80, 0),
        # The first bad field on the wire is named, when there are several.
        (_string(MODEL, b"\xfe") + _string(TEXTS, b"\xff"), "model", 0xFE, 0),
    ],
)
def test_invalid_utf8_names_the_field_the_byte_and_its_offset(
    data: bytes, param: str, byte: int, offset: int
) -> None:
    parsed = decode_embed_request(data)
    assert parsed == UndecodableRequest(
        f"is not valid UTF-8 (byte 0x{byte:02x} at offset {offset}); {UTF8_SUFFIX}",
        param,
        pb.ERROR_REASON_INVALID_UTF8,
    )


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x7fshort",  # a length past the end of the message
        b"\x0a",  # a tag with nothing after it
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a varint that never ends
        b"\x0f",  # field 1 with wire type 7, which does not exist
        _string(TEXTS, b"fine") + b"\x12\x05mo",  # valid UTF-8, then a cut-off model
    ],
)
def test_a_message_that_is_not_an_embed_request_is_invalid_message_with_no_field(
    data: bytes,
) -> None:
    parsed = decode_embed_request(data)
    assert isinstance(parsed, UndecodableRequest)
    assert (parsed.reason, parsed.param) == (pb.ERROR_REASON_INVALID_MESSAGE, None)
    assert parsed.description.startswith("the request is not a valid EmbedRequest: ")


def test_bytes_that_are_not_utf8_outside_string_fields_are_not_blamed() -> None:
    # An unknown field's bytes (from a newer client) are not text: protobuf
    # keeps them as unknown fields, and the request is served.
    data = _string(TEXTS, b"ok") + _string(15, b"\xff\xfe")
    parsed = decode_embed_request(data)
    assert isinstance(parsed, pb.EmbedRequest)
    assert list(parsed.texts) == ["ok"]


def test_the_largest_message_with_the_bad_byte_last_is_explained_quickly() -> None:
    """256 texts of 8 KiB (the default limits), the last one ending in a bad byte."""
    texts = [_string(TEXTS, b"a" * 8192) for _ in range(255)]
    data = b"".join(texts) + _string(TEXTS, b"a" * 8191 + b"\xff")
    assert len(data) > 2 << 20
    started = time.perf_counter()
    parsed = decode_embed_request(data)
    elapsed = time.perf_counter() - started
    assert isinstance(parsed, UndecodableRequest)
    assert (parsed.param, parsed.reason) == ("texts[255]", pb.ERROR_REASON_INVALID_UTF8)
    assert "at offset 8191" in parsed.description
    # Tens of milliseconds here: the bound is for a slow, shared machine.
    assert elapsed < 1.0, f"{elapsed:.3f} s"
