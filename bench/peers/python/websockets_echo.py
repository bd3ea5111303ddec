"""Echo server on Python `websockets`, the library's defaults (permessage-deflate
on: server_max_window_bits=12, client_max_window_bits=12, memLevel 5).

Usage: python websockets_echo.py [--listen HOST:PORT]   (default 127.0.0.1:0)
Prints `listening on ws://ADDR` once bound, as the bench harness expects.
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws) -> None:
    async for message in ws:
        await ws.send(message)


async def main(argv: list[str]) -> None:
    addr = "127.0.0.1:0"
    if argv[:1] == ["--listen"] and len(argv) == 2:
        addr = argv[1]
    elif argv:
        sys.exit(f"unknown arguments {argv!r}")
    host, port = addr.rsplit(":", 1)
    async with serve(echo, host.strip("[]"), int(port)) as server:
        host, port = server.sockets[0].getsockname()[:2]
        print(f"listening on ws://{host}:{port}", flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
