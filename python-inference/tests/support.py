"""A core served in-process for tests: real model, free loopback ports."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tandem.process import Ports, serve
from tandem.settings import Settings


class RunningCore:
    """A core served from a background thread with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ports: Ports | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="core", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            listening: asyncio.Future[Ports] = self._loop.create_future()
            server = asyncio.create_task(
                serve(self.settings, process_started=0.0, stop=self._stop, on_listening=listening)
            )
            self.ports = await listening
            self._ready.set()
            await server

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def start(self) -> RunningCore:
        """Start and wait until /readyz says ready (model loaded and warmed)."""
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError(f"core did not start: {self._error!r}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if httpx.get(f"{self.http_url}/readyz", timeout=5).status_code == 200:
                return self
            time.sleep(0.05)
        raise RuntimeError("core did not become ready within 60 s")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    @property
    def grpc_target(self) -> str:
        assert self.ports is not None
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        assert self.ports is not None
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def metrics_url(self) -> str:
        assert self.ports is not None
        return f"http://127.0.0.1:{self.ports.metrics}/metrics"


def core_settings(model_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_dir": model_dir,
        "grpc_port": 0,
        "http_port": 0,
        "metrics_port": 0,
        "log_format": "text",
        "shutdown_grace_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)
