"""The HTTP edge: FastAPI app with the embed route, health, readiness and metrics."""
