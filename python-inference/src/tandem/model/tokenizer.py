"""Tokenization with Hugging Face ``tokenizers``, matching sentence-transformers.

The packaged tokenizer.json is configured to truncate and pad to 128; the
sentence-transformers model uses a maximum of 256 tokens and pads per batch.
So both are switched off here: texts are encoded in full (to know the true
length, for the reject policy and for reporting), then cut to the model's
maximum the way the library's truncation does it: keep the first tokens and
end with the final special token ([SEP]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

_SEQUENTIAL_TEXTS = 4


@dataclass(frozen=True, slots=True)
class TokenizedText:
    """Token ids for one text, ready for the model."""

    ids: np.ndarray  # int32, special tokens included, at most max_tokens long
    full_length: int  # tokens before truncation, special tokens included

    @property
    def token_count(self) -> int:
        return int(self.ids.shape[0])

    @property
    def truncated(self) -> bool:
        return self.full_length > self.token_count


class TextTokenizer:
    """Encodes texts into model inputs. Thread-safe; releases the GIL while encoding."""

    def __init__(self, path: Path, max_tokens: int) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_tokens = max_tokens

    def encode(self, texts: Sequence[str]) -> list[TokenizedText]:
        # encode_batch fans out to a Rust thread pool without the GIL: worth it
        # for many texts, but for a few the hand-off costs more than the work.
        if len(texts) <= _SEQUENTIAL_TEXTS:
            encodings = [self._tokenizer.encode(text) for text in texts]
        else:
            encodings = self._tokenizer.encode_batch(list(texts))
        out = []
        for encoding in encodings:
            ids = np.asarray(encoding.ids, dtype=np.int32)
            full_length = int(ids.shape[0])
            if full_length > self.max_tokens:
                # [CLS] t1 .. t(max-2) [SEP]: the first tokens plus the closing special token.
                ids = np.concatenate((ids[: self.max_tokens - 1], ids[-1:]))
            out.append(TokenizedText(ids=ids, full_length=full_length))
        return out
