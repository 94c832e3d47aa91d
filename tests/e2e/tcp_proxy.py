"""A TCP proxy on 127.0.0.1 that can be switched between passing traffic through
and being sick: then it resets every open connection and every new one right after
accepting it, which is what a crashed or wedged core looks like from the network.
It runs an asyncio loop in a thread of its own, so that tests can drive it from
plain synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from concurrent.futures import Future

# SO_LINGER with a zero timeout makes close() send RST instead of FIN: the peer
# sees "connection reset", not an orderly end of stream.
_RESET = struct.pack("ii", 1, 0)


class SwitchableProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        # Written only by the loop's thread; reading an int is atomic.
        self.bytes_to_upstream = 0
        self.connections_passed = 0
        self.connections_reset = 0
        self._sick = False
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> SwitchableProxy:
        self._thread.start()
        self._server = self._call(self._listen())
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def set_sick(self, sick: bool) -> None:
        """Switch modes; going sick resets every open connection at once."""
        self._call(self._switch(sick))

    def _call(self, coro: object) -> object:
        future: Future[object] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return future.result(timeout=10)

    async def _listen(self) -> asyncio.Server:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            _reset(writer)

    async def _switch(self, sick: bool) -> None:
        self._sick = sick
        if sick:
            for writer in list(self._open):
                _reset(writer)
            self._open.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._sick:
            self.connections_reset += 1
            _reset(client_w)
            return
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            _reset(client_w)
            return
        self.connections_passed += 1
        self._open.update((client_w, upstream_w))
        try:
            await asyncio.gather(
                self._pipe(client_r, upstream_w, count=True),
                self._pipe(upstream_r, client_w, count=False),
            )
        finally:
            self._open.difference_update((client_w, upstream_w))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                if self._sick:
                    break
                if count:
                    self.bytes_to_upstream += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass  # reset by either side: the connection is over
        finally:
            _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    writer.transport.abort()
