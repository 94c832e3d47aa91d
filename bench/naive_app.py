"""The naive pattern, for comparison only: DO NOT copy this.

One uvicorn worker whose ``async def`` handler calls the tokenizer and the
model synchronously on the event loop, one request at a time, no batching,
ONNX Runtime on its default threads. While a request computes, nothing else
on the loop runs: not other requests, not the health check.

Run: TANDEM_NAIVE_MODEL_DIR=... uvicorn naive_app:app --port N --workers 1

TANDEM_NAIVE_BACKEND=sentence-transformers serves the same pattern the way most
tutorials write it, ``SentenceTransformer.encode`` (PyTorch) in the handler, with
TANDEM_NAIVE_MODEL_DIR a sentence-transformers model directory. `make bench-peers`
runs it so, in the peers' virtualenv (.cache/peers-venv), which has torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer

MODEL_DIR = Path(os.environ["TANDEM_NAIVE_MODEL_DIR"])
BACKEND = os.environ.get("TANDEM_NAIVE_BACKEND", "onnx")
if BACKEND == "sentence-transformers":
    # Only the peers' virtualenv has it (and torch): imported when asked for.
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(MODEL_DIR), device="cpu")
elif BACKEND == "onnx":
    tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.no_padding()
    session = ort.InferenceSession(
        str(MODEL_DIR / "model-fp32.onnx"), providers=["CPUExecutionProvider"]
    )
else:
    raise ValueError(f"TANDEM_NAIVE_BACKEND: onnx or sentence-transformers, not {BACKEND!r}")
app = FastAPI()


class Body(BaseModel):
    texts: list[str]


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/embed")
async def embed(body: Body) -> dict[str, list[list[float]]]:
    if BACKEND == "sentence-transformers":
        # Tokenizer, PyTorch forward pass and mean pooling, all on the loop.
        return {"embeddings": st_model.encode(body.texts, normalize_embeddings=True).tolist()}
    encodings = tokenizer.encode_batch(body.texts)  # blocks the loop
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), np.int32)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encodings):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    (vectors,) = session.run(None, {"input_ids": ids, "attention_mask": mask})  # blocks the loop
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return {"embeddings": vectors.tolist()}
