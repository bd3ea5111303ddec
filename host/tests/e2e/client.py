"""Python `websockets` client for the end-to-end tests.

Usage: client.py ws://HOST:PORT/
Exercises text, binary and large echo, ping/pong and the close handshake;
prints "ok" and exits 0 on success, raises otherwise.
"""

import asyncio
import sys

from websockets.asyncio.client import connect


async def main(url: str) -> None:
    async with connect(url, max_size=2**22) as ws:
        await ws.send("hello from python")
        assert await ws.recv() == "hello from python"

        data = bytes(range(256)) * 4
        await ws.send(data)
        assert await ws.recv() == data

        # Exactly the echo's default frame limit (64 KiB, one frame each way).
        big = "x" * 65_536
        await ws.send(big)
        assert await ws.recv() == big

        # Fragmented on the client side: an iterable is sent as fragments.
        await ws.send(["frag", "mented", " text"])
        assert await ws.recv() == "fragmented text"

        pong = await ws.ping(b"py")
        await asyncio.wait_for(pong, 10)

        await ws.close(code=1000, reason="done")
        assert ws.close_code == 1000, ws.close_code
    print("ok")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 30))
