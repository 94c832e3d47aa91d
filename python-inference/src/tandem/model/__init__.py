"""The model layer: building the ONNX graph, tokenizing, and running inference.

Nothing here knows about gRPC, HTTP or asyncio; the service layer drives it.
"""
