"""Python `websockets` against a composed example handler (compose.rs).

Usage: compose_client.py ws://HOST:PORT

The same handler behaviour in each language (examples/compose/handler,
examples/handler-py, examples/handler-js): prints `ok` when every check
passes, else raises.
"""

import asyncio
import sys

import websockets


async def main(base: str) -> None:
    # Subprotocol preference: shout.v1 over plain.v1, in the client's spelling.
    async with websockets.connect(f"{base}/compose", subprotocols=["plain.v1", "Shout.V1"]) as ws:
        assert ws.subprotocol == "Shout.V1", ws.subprotocol
        assert ws.response.headers["X-Handler"] == "compose-example"
        await ws.send("straße")
        got = await ws.recv()
        assert got == "#1 STRASSE", got
        await ws.send(bytes(range(10)))
        got = await ws.recv()
        assert got == bytes(reversed(range(10))), got
        await ws.send("bye")
        got = await ws.recv()
        assert got == "#3 goodbye", got
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1000, "bye"), (ws.close_code, ws.close_reason)

    # plain.v1 only: text as it came.
    async with websockets.connect(f"{base}/compose", subprotocols=["plain.v1"]) as ws:
        assert ws.subprotocol == "plain.v1", ws.subprotocol
        await ws.send("Mixed Case")
        got = await ws.recv()
        assert got == "#1 Mixed Case", got

    # Another path: 403 with the handler's reason.
    try:
        async with websockets.connect(f"{base}/nope"):
            raise AssertionError("/nope was accepted")
    except websockets.exceptions.InvalidStatus as e:
        assert e.response.status_code == 403, e.response.status_code
        reason = e.response.headers["X-WebSocket-Reject-Reason"]
        assert reason == "/nope is not served here", reason
        assert e.response.body == b"only /compose is served here\n", e.response.body
    print("ok")


asyncio.run(main(sys.argv[1]))
