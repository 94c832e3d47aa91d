"""The fixed benchmark corpus: deterministic sentences of 16 to 64 tokens.

Generated, not downloaded: a seeded grammar over a few hundred ordinary words,
so every run on every machine embeds exactly the same texts. Speed depends on
token counts, which the corpus controls (uniform 16-64, special tokens included).
"""

from __future__ import annotations

import random
from collections.abc import Callable

_SUBJECTS = (
    "the gateway", "a python worker", "the inference core", "our batch scheduler", "the model",
    "a kubernetes pod", "the load balancer", "every request", "the tokenizer", "a slow client",
    "the health probe", "the event loop", "one replica", "the queue", "a long-lived connection",
)  # fmt: skip
_VERBS = (
    "waits for", "computes", "rejects", "forwards", "batches", "measures", "drops", "returns",
    "retries", "balances", "serialises", "tokenizes", "schedules", "observes", "protects",
)  # fmt: skip
_OBJECTS = (
    "the embedding vectors", "a deadline from the edge", "sentences of different lengths",
    "the readiness signal", "traffic from many callers", "a burst of short texts",
    "the memory limit of the container", "every span of the trace", "the token budget",
    "requests that arrive too late", "the padded batch", "the cpu quota of the pod",
)  # fmt: skip
_TAILS = (
    "before the timeout expires", "while the cluster scales out", "under heavy load",
    "without blocking anything", "when the queue is full", "after a rolling restart",
    "so that latency stays low", "because padding wastes compute", "in a few milliseconds",
    "on two small cpu cores", "for a user in another region", "with careful arithmetic",
)  # fmt: skip
_WORDS = (
    "quickly", "carefully", "again", "eventually", "reliably", "today", "honestly", "twice",
    "predictably", "quietly", "sometimes", "usually", "rarely", "together", "alone",
)  # fmt: skip


def make_corpus(
    count: int, count_tokens: Callable[[str], int], *, seed: int = 20261125
) -> list[str]:
    """``count`` sentences whose token counts are spread uniformly over 16..64."""
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < count:
        target = rng.randint(16, 64)
        parts = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
        text = " ".join(parts)
        while count_tokens(text + ".") < target:
            addition = rng.choice((_TAILS, _WORDS, _OBJECTS))
            text += " " + rng.choice(addition)
        text += "."
        if 16 <= count_tokens(text) <= 64:
            texts.append(text[0].upper() + text[1:])
    return texts
