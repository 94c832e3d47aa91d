"""The ONNX graph's input and output names, shared by the graph builder and the runtime.

Kept apart from graph.py so the serving code never imports ``onnx`` (a
build-time-only dependency, absent from the runtime image).
"""

INPUT_IDS = "input_ids"  # int32 [batch, sequence], right-padded with 0
ATTENTION_MASK = "attention_mask"  # int32 [batch, sequence], 1 for real tokens
OUTPUT = "sentence_embedding"  # float32 [batch, hidden], mean-pooled, not normalised
