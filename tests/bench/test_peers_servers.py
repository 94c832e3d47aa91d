"""bench/peers/servers.py: request and reply shapes, and how each peer is started."""

from __future__ import annotations

from pathlib import Path

from peers.servers import MODEL_NAME, PEER_ENV, PEERS, Endpoint, PeersSetup

SETUP = PeersSetup(venv=Path("/venv"), models=Path("/models"))


def test_openai_shape_round_trip_keeps_the_order_of_the_texts() -> None:
    endpoint = Endpoint("http://127.0.0.1:1", "/embeddings", openai=True)
    assert endpoint.body(["a", "b"]) == {"model": MODEL_NAME, "input": ["a", "b"]}
    reply = {"data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}]}
    assert endpoint.vectors(reply) == [[1.0, 0.0], [0.0, 1.0]]


def test_core_shape() -> None:
    endpoint = Endpoint("http://127.0.0.1:1", "/v1/embed", openai=False)
    assert endpoint.body(("a",)) == {"texts": ["a"]}
    assert endpoint.vectors({"embeddings": [[0.5, 0.5]]}) == [[0.5, 0.5]]


def test_every_peer_listens_on_loopback_only() -> None:
    for peer in PEERS:
        argv = peer.argv(SETUP, 4321)
        assert argv[argv.index("--host") + 1] == "127.0.0.1", peer.key
        assert argv[argv.index("--port") + 1] == "4321", peer.key


def test_infinity_onnx_pools_by_mean_on_the_prepared_graph() -> None:
    # Its default ("auto") pools with [CLS] on this model: different vectors.
    argv = next(p for p in PEERS if p.key == "infinity-onnx").argv(SETUP, 1)
    assert argv[argv.index("--pooling-method") + 1] == "mean"
    assert argv[argv.index("--engine") + 1] == "optimum"
    assert argv[argv.index("--model-id") + 1] == "/models/onnx"


def test_naive_server_runs_sentence_transformers_with_bench_last_on_its_path() -> None:
    naive = next(p for p in PEERS if p.key == "naive")
    argv = naive.argv(SETUP, 1)
    assert argv[:2] == ["/venv/bin/python", "-P"]  # -P: no script directory first on the path
    assert "sys.path.append" in argv[3]  # bench/ after the standard library
    assert argv[4].endswith("bench")
    assert argv[argv.index("--app-dir") + 1] == "/models"  # a directory with no modules
    assert naive.env(SETUP)["TANDEM_NAIVE_BACKEND"] == "sentence-transformers"


def test_peers_run_offline() -> None:
    assert PEER_ENV["HF_HUB_OFFLINE"] == "1"
    assert PEER_ENV["DO_NOT_TRACK"] == "1"
