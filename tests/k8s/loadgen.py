"""In-cluster load for tests/k8s: POST /v1/embeddings to a Service, from a pod.

It runs inside the cluster (in a pod of the core image, which has Python; no
other image is needed), so its requests take the path real clients take:
Service address, kube-proxy's rules, a gateway pod. Standard library only.

Bounded in both count and time: it stops at --max-requests or --duration,
whichever comes first, and every request has a --timeout. SIGTERM (deleting
the pod) stops it early: no new requests, in-flight ones finish, the summary
is printed, exit 0.

Each request opens its own connection (no keep-alive), so every request is
balanced by the Service on its own and a draining gateway gets no new
requests once it has left the Service's endpoints.

Request i asks for model i mod len(--model): with several --model flags the
load is spread evenly over the models (so over their core pools), and the
summary counts each model's outcomes apart.

Output, JSON lines on stdout:
  {"event": "start", ...}
  {"event": "tick", "second": 3, "ts": <unix time>, "outcomes": {"ok": 41},
   "ok_ms": [12.5, ...]}   once a second; ok_ms: latency of each success that ended in it
  {"event": "done", "requests": N, "outcomes": {...}, "models": {model: {...}},
   "failures": [...], "latency_ms": {...}}
Outcome names: ok, http_<status>[_<error code>], timeout, refused, reset, error_<Exception>.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import signal
import socket
import sys
import threading
import time
import urllib.parse


def classify(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected | BrokenPipeError):
        return "reset"
    return f"error_{type(exc).__name__}"


def main() -> int:  # noqa: PLR0915 - one self-contained script, copied into a pod
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="http://service:port/v1/embeddings")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds, at most 600")
    parser.add_argument("--max-requests", type=int, default=20000, help="at most 200000")
    parser.add_argument(
        "--shape",
        choices=("texts", "flood"),
        default="texts",
        help="texts: --texts texts of --words words; flood: one body of --flood-bytes "
        "filled with empty strings (an attacker's item flood, expected to be refused)",
    )
    parser.add_argument("--flood-bytes", type=int, default=(4 << 20) - 64)
    parser.add_argument("--texts", type=int, default=2, help="texts per request")
    parser.add_argument("--words", type=int, default=12, help="words per text")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument(
        "--rate", type=float, default=0.0,
        help="at most this many requests started per second, over all callers (0 = no pacing)",
    )  # fmt: skip
    parser.add_argument("--run-id", default="load")
    parser.add_argument(
        "--model",
        action="append",
        help="model to ask for; repeat it to cycle through several (default: all-MiniLM-L6-v2)",
    )
    args = parser.parse_args()
    duration = min(args.duration, 600.0)
    max_requests = min(args.max_requests, 200_000)
    url = urllib.parse.urlsplit(args.url)
    models: list[str] = args.model or ["all-MiniLM-L6-v2"]

    lock = threading.Lock()
    per_second: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: collections.Counter[str] = collections.Counter()
    by_model: dict[str, collections.Counter[str]] = {m: collections.Counter() for m in models}
    failures: list[dict[str, object]] = []
    latencies: list[float] = []
    ok_ms_per_second: dict[int, list[float]] = collections.defaultdict(list)
    started = time.time()
    deadline = time.monotonic() + duration
    next_index = 0
    finished = threading.Event()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    # The flood body is the same for every request: built once, so the load
    # pod's memory does not grow with the concurrency.
    flood = b""
    if args.shape == "flood":
        items = max(1, (min(args.flood_bytes, 64 << 20) - 40) // 3)
        flood = (
            b'{"model":' + json.dumps(models[0]).encode() + b',"input":['
            + b",".join([b'""'] * items) + b"]}"
        )  # fmt: skip

    def body(i: int) -> bytes:
        if flood:
            return flood
        texts = [
            " ".join(f"word{(i * 7 + k * 13 + w) % 997}" for w in range(args.words))
            + f" request {i} text {k}"
            for k in range(args.texts)
        ]
        return json.dumps({"model": models[i % len(models)], "input": texts}).encode()

    def one(i: int) -> str:
        request_id = f"{args.run_id}-{i}"
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)
        t0 = time.monotonic()
        try:
            conn.request(
                "POST",
                url.path,
                body=body(i),
                headers={
                    "Content-Type": "application/json",
                    "X-Request-Id": request_id,
                    "Connection": "close",
                },
            )
            response = conn.getresponse()
            data = response.read()
        except Exception as exc:
            outcome = classify(exc)
            record_failure(request_id, outcome, repr(exc))
            return outcome
        finally:
            conn.close()
        if response.status == 200:
            try:
                n = len(json.loads(data)["data"])
            except (ValueError, KeyError, TypeError):
                n = -1
            if n == args.texts:
                ms = (time.monotonic() - t0) * 1000
                with lock:
                    latencies.append(ms)
                    ok_ms_per_second[int(time.time() - started)].append(round(ms, 1))
                return "ok"
            record_failure(request_id, "bad_body", data[:200].decode(errors="replace"))
            return "bad_body"
        code = ""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            code = json.loads(data)["error"]["code"] or ""
        outcome = f"http_{response.status}" + (f"_{code}" if code else "")
        record_failure(request_id, outcome, data[:200].decode(errors="replace"))
        return outcome

    def record_failure(request_id: str, outcome: str, detail: str) -> None:
        i = int(request_id.rsplit("-", 1)[1])
        with lock:
            if len(failures) < 50:
                failures.append(
                    {
                        "ts": round(time.time(), 3),
                        "request_id": request_id,
                        "model": models[i % len(models)],
                        "outcome": outcome,
                        "detail": detail,
                    }
                )

    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    next_start = time.monotonic()

    def worker() -> None:
        nonlocal next_index, next_start
        while time.monotonic() < deadline and not stopping.is_set():
            with lock:
                if next_index >= max_requests:
                    return
                i = next_index
                next_index += 1
                start_at = max(next_start, time.monotonic())
                next_start = start_at + interval
            if interval:
                # Paced: each request gets its own start slot, so callers
                # together never exceed --rate (a light, steady trickle).
                stopping.wait(max(0.0, start_at - time.monotonic()))
                if stopping.is_set() or time.monotonic() >= deadline:
                    return
            outcome = one(i)
            with lock:
                per_second[int(time.time() - started)][outcome] += 1
                totals[outcome] += 1
                by_model[models[i % len(models)]][outcome] += 1

    def ticker() -> None:
        second = 0
        while not finished.is_set():
            finished.wait(max(0.0, started + second + 1.05 - time.time()))
            with lock:
                counts = dict(per_second.get(second, {}))
                ok_ms = list(ok_ms_per_second.pop(second, []))
            print(
                json.dumps(
                    {
                        "event": "tick",
                        "second": second,
                        "ts": round(started + second, 3),
                        "outcomes": counts,
                        "ok_ms": ok_ms,
                    }
                ),
                flush=True,
            )
            second += 1

    print(
        json.dumps(
            {
                "event": "start",
                "ts": round(started, 3),
                "url": args.url,
                "concurrency": args.concurrency,
                "duration": duration,
                "max_requests": max_requests,
                "texts": args.texts,
                "models": models,
            }
        ),
        flush=True,
    )
    tick = threading.Thread(target=ticker, daemon=True)
    tick.start()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.5)
    finished.set()
    tick.join(timeout=2)
    latencies.sort()

    def pct(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)
            if latencies
            else 0.0
        )

    summary = {
        "event": "done",
        "ts": round(time.time(), 3),
        "requests": sum(totals.values()),
        "stopped_early": stopping.is_set(),
        "outcomes": dict(totals),
        "models": {m: dict(c) for m, c in by_model.items()},
        "per_second_ok": [
            per_second[s].get("ok", 0) for s in range(max(per_second, default=-1) + 1)
        ],
        "failures": failures,
        "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
