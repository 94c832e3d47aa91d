"""Tandem's Python compute core: sentence embeddings served over gRPC and HTTP."""

__version__ = "0.1.0"
