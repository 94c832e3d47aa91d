"""Traffic with every outcome the dashboard shows, for the suites that check it.

Successes for both models, bad input (400), an unknown model (404), and,
from two extra gateways in front of the same fp32 model, the rate limit
(429), a deadline the core cannot meet (504) and a pool whose cores are gone
(503). The extra gateways' settings are here too, so the local and the
Kubernetes suites start them alike. Bounded in time and in requests.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import httpx

# strict: a 1 ms upstream budget (every call it lets through is 504) and a
# rate limit of 1 request/s with a burst of 2 (the rest of a burst is 429).
STRICT_GATEWAY_SETTINGS = {
    "TANDEM_GATEWAY_UPSTREAM_TIMEOUT": "1ms",
    "TANDEM_GATEWAY_RATE_LIMIT_RPS": "1",
    "TANDEM_GATEWAY_RATE_LIMIT_BURST": "2",
}
# orphan: its pool for the fp32 model points at an address nobody listens on.
WANTED_STATUSES = (200, 400, 404, 429, 503, 504)


@dataclass(frozen=True)
class OutcomeGateways:
    """Base URLs of the release's gateway and the two extra ones."""

    main: str
    strict: str
    orphan: str


def drive(
    gateways: OutcomeGateways,
    *,
    fp32_model: str,
    int8_model: str,
    seconds: float,
    max_requests: int,
) -> Counter[int]:
    """Send rounds of every outcome until seconds or max_requests; the count of each status."""
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10.0) as client:

        def embed(base: str, model: str, text: object) -> None:
            reply = client.post(f"{base}/v1/embeddings", json={"model": model, "input": text})
            seen[reply.status_code] += 1

        while time.monotonic() < deadline and seen.total() < max_requests:
            embed(gateways.main, fp32_model, ["a sentence to embed", "and another one"])
            embed(gateways.main, int8_model, "a sentence for the int8 model")
            embed(gateways.main, fp32_model, "")  # 400: empty input
            embed(gateways.main, "no-such-model", "x")  # 404
            embed(gateways.orphan, fp32_model, "x")  # 503
            for _ in range(3):  # 504 while the bucket holds a token, then 429
                embed(gateways.strict, fp32_model, "x")
            time.sleep(0.05)
    return seen
