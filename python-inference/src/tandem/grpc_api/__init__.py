"""The gRPC edge: EmbeddingService, standard health and reflection, on grpc.aio."""
