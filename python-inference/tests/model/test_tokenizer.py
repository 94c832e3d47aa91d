from __future__ import annotations

from pathlib import Path

import pytest

from tandem.model.manifest import ModelManifest
from tandem.model.tokenizer import TextTokenizer

CLS, SEP = 101, 102


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> TextTokenizer:
    manifest = ModelManifest.read(model_dir)
    return TextTokenizer(model_dir / manifest.tokenizer, manifest.max_tokens)


def test_short_text_has_special_tokens_and_is_not_truncated(tokenizer: TextTokenizer) -> None:
    (hello,) = tokenizer.encode(["hello"])
    assert hello.ids.tolist() == [CLS, 7592, SEP]
    assert hello.token_count == 3
    assert not hello.truncated


def test_long_text_is_cut_to_max_tokens_keeping_the_closing_sep(tokenizer: TextTokenizer) -> None:
    words = tokenizer.max_tokens + 144
    (long,) = tokenizer.encode(["word " * words])
    assert long.full_length == words + 2  # [CLS] ... [SEP]
    assert long.token_count == tokenizer.max_tokens
    assert long.truncated
    assert long.ids[0] == CLS
    assert long.ids[-1] == SEP


def test_exactly_max_tokens_is_not_truncated(tokenizer: TextTokenizer) -> None:
    (exact,) = tokenizer.encode(["word " * (tokenizer.max_tokens - 2)])
    assert exact.token_count == tokenizer.max_tokens
    assert not exact.truncated


def test_batch_keeps_order(tokenizer: TextTokenizer) -> None:
    texts = ["a", "b c", "d e f"]
    assert [t.token_count for t in tokenizer.encode(texts)] == [3, 4, 5]
