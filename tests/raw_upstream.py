"""A misbehaving upstream on 127.0.0.1, written on raw sockets (asyncio streams in a thread), for
what a well-behaved ASGI server cannot do: answer one byte at a time, or never answer at all.

    with RawUpstream("trickle", interval=0.3) as up:   # headers, then one body byte per interval, forever
    with RawUpstream("hang") as up:                     # reads the request, never answers
    with RawUpstream("stall_stream") as up:             # an SSE role chunk, then silence

`up.base_url` is an OpenAI-style base (".../v1"); `up.opened` counts connections, `up.closed_early`
those the client closed before the server was done with them (a cancelled upstream call).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time


class RawUpstream:
    def __init__(self, mode: str, interval: float = 0.3):
        self.mode, self.interval = mode, interval
        self.opened = 0
        self.closed_early = 0
        self.closed_at: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start():
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    async def _read_request(self, reader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await reader.readexactly(length)

    async def _handle(self, reader, writer) -> None:
        self.opened += 1
        try:
            await self._read_request(reader)
            if self.mode == "hang":
                # Nothing is ever sent: wait for the client to give up (read returns b"" on close).
                if await reader.read(1) == b"":
                    self._closed()
                return
            if self.mode == "trickle":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"},
                                      "finish_reason": None}]}
                writer.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await writer.drain()
            if self.mode == "stall_stream":  # silence until the client gives up
                if await reader.read(1) == b"":
                    self._closed()
                return
            while True:
                await asyncio.sleep(self.interval)
                writer.write(b" ")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            self._closed()
        except asyncio.CancelledError:
            pass  # the test is over (__exit__)
        finally:
            writer.close()

    def _closed(self) -> None:
        self.closed_early += 1
        self.closed_at.append(time.time())

    def __enter__(self) -> RawUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        def stop():
            self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.call_later(0.1, self._loop.stop)  # let the cancelled handlers close their sockets

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(5)
        self._loop.close()
