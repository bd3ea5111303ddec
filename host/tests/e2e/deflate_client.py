"""Python `websockets` client for the permessage-deflate end-to-end test.

Usage: deflate_client.py ws://HOST:PORT/
`websockets` offers permessage-deflate by default; this checks the echo
accepts it and round-trips compressible, incompressible, fragmented and
threshold-crossing messages, then that a client that does not offer it is
served uncompressed. Prints "ok" and exits 0 on success, raises otherwise.
"""

import asyncio
import os
import sys

from websockets.asyncio.client import connect


def json_text(n: int) -> str:
    return ",".join(
        '{"id":%d,"user":"user%d","text":"hello there"}' % (i, i % 7) for i in range(n)
    )


async def echo(ws, message) -> None:
    await ws.send(message)
    got = await ws.recv()
    expected = "".join(message) if isinstance(message, list) else message
    assert got == expected, (len(got), len(expected))


async def main(url: str) -> None:
    async with connect(url, max_size=2**22) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        assert ext is not None and ext.startswith("permessage-deflate"), ext
        # ~270 KB of JSON: over the 64 KiB frame limit uncompressed, a few
        # KB compressed; the echo's answer comes back compressed.
        await echo(ws, json_text(6000))
        # Incompressible bytes: the echo sends them back plain.
        await echo(ws, os.urandom(60_000))
        # Fragmented and compressed (an iterable is sent as fragments).
        text = json_text(2000)
        await echo(ws, [text[i : i + 5000] for i in range(0, len(text), 5000)])
        # Around the echo's 1 KiB threshold.
        for n in (1023, 1024, 1025):
            await echo(ws, "z" * n)
        await echo(ws, "")
        await ws.close(code=1000, reason="done")
        assert ws.close_code == 1000, ws.close_code

    async with connect(url, compression=None) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        await echo(ws, json_text(100))
        await echo(ws, "z" * 2000)
    print("ok")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
