"""Request and response models of the core's HTTP API (Pydantic v2).

Types are strict (no coercion of 1 to "1"); limits that depend on settings
(counts, sizes) are checked by the service so both edges enforce the same ones.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class EmbedBody(BaseModel):
    """POST /v1/embed."""

    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr] = Field(
        description="Texts to embed: 1 to max_texts_per_request non-empty strings "
        "of at most max_text_bytes UTF-8 bytes each (see GET /v1/model)."
    )
    model: StrictStr | None = Field(
        None, description="Model id or alias; omit for the served model."
    )
    normalize: StrictBool = Field(True, description="L2-normalise each vector.")
    truncate: StrictBool = Field(
        True,
        description="Cut texts longer than max_tokens (reported per item); false rejects them "
        "with 400 context_length_exceeded.",
    )


class EmbeddingItem(BaseModel):
    values: list[float] = Field(description="The vector, `dimension` floats.")
    token_count: int = Field(description="Tokens embedded, special tokens included.")
    truncated: bool = Field(description="True when the text was cut to max_tokens.")


class EmbedReply(BaseModel):
    model: str = Field(description="Canonical id of the model that computed the vectors.")
    embeddings: list[EmbeddingItem] = Field(description="One per text, in request order.")
    total_tokens: int = Field(description="Sum of token_count.")


class ModelReply(BaseModel):
    model_id: str
    aliases: list[str]
    dimension: int
    max_tokens: int
    max_texts_per_request: int
    max_text_bytes: int
    precision: str


class ErrorDetail(BaseModel):
    message: str = Field(description="What is wrong, for a human.")
    type: str = Field(description="invalid_request_error, rate_limit_error or server_error.")
    param: str | None = Field(description="The offending field, e.g. texts[3], when there is one.")
    code: str | None = Field(description="Stable machine-readable code, e.g. text_too_large.")


class ErrorReply(BaseModel):
    """The one error shape of every non-2xx answer (the gateway uses the same)."""

    error: ErrorDetail


class HealthReply(BaseModel):
    status: str
    reason: str | None = None
