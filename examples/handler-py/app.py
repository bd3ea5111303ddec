"""The examples/compose handler in Python: a `websocket-handler` component.

componentize-py builds this module into a component that exports
`ws-edge:websocket/handler`; `wac plug` then plugs it into the protocol
component (examples/compose/protocol), which does all the HTTP and
WebSocket work. Behaviour, identical to the Rust handler so that one test
suite (host/tests/e2e/compose.rs) runs against both:

- `/compose` is accepted; of the subprotocols offered, `shout.v1` is
  preferred over `plain.v1` (compared ASCII case-insensitively) and the
  response carries `X-Handler: compose-example`;
- any other path is rejected with `403`, a reason and a body;
- each text message comes back prefixed with its number on the
  connection (`#1 HELLO`), upper-cased under `shout.v1`; binary messages
  come back reversed;
- `bye` is answered with `#n goodbye` and a close with `1000`;
- `throw` raises an exception (the host ends this connection with `1011`
  and logs the traceback), as does a request for `/compose/throw` (`500`).
"""

from wit_world import exports
from wit_world.exports import handler
from wit_world.imports.types import CloseFrame, Header

# The subprotocols this handler speaks, most preferred first.
PROTOCOLS = ("shout.v1", "plain.v1")


class HandlerFailure(Exception):
    """What the handler raises when a client asks it to fail."""


def field(name: str, value: str) -> Header:
    """A header field; WIT header values are bytes."""
    return Header(name=name, value=value.encode())


class Session(exports.handler.Session):
    """One connection's state: kept here, never in module globals."""

    def __init__(self, shout: bool) -> None:
        self.shout = shout
        self.count = 0

    def on_message(self, message: handler.Message) -> handler.Reply:
        self.count += 1
        n = self.count
        if isinstance(message, handler.Message_Binary):
            return handler.Reply(send=[handler.Message_Binary(message.value[::-1])], close=None)
        text = message.value
        if text == "bye":
            return handler.Reply(
                send=[handler.Message_Text(f"#{n} goodbye")],
                close=CloseFrame(code=1000, reason="bye"),
            )
        if text == "throw":
            raise HandlerFailure(f"handler failure: asked to throw by message #{n}")
        if self.shout:
            # Full Unicode upper-casing, as Rust's `str::to_uppercase`
            # (`ß` becomes `SS`).
            text = text.upper()
        return handler.Reply(send=[handler.Message_Text(f"#{n} {text}")], close=None)

    def closed(self, frame: CloseFrame) -> None:
        pass


class Handler(exports.Handler):
    """The exported `handler` interface: `decide` creates the sessions."""

    def decide(self, request: handler.UpgradeRequest) -> handler.Decision:
        if request.path == "/compose/throw":
            raise HandlerFailure(f"handler failure: asked to throw by a request for {request.path}")
        if request.path != "/compose":
            return handler.Decision_Reject(
                handler.RejectOptions(
                    status=403,
                    reason=f"{request.path} is not served here",
                    headers=[field("X-Handler", "compose-example")],
                    body=b"only /compose is served here\n",
                )
            )
        # The protocol component echoes the client's own spelling; compare
        # ASCII case-insensitively as it does.
        protocol = None
        for wanted in PROTOCOLS:
            protocol = next((p for p in request.protocols if ascii_eq(p, wanted)), None)
            if protocol is not None:
                break
        shout = protocol is not None and ascii_eq(protocol, PROTOCOLS[0])
        options = handler.AcceptOptions(
            protocol=protocol,
            headers=[field("X-Handler", "compose-example")],
            cookies=[],
        )
        return handler.Decision_Accept((options, Session(shout)))


# Maps A-Z to a-z and nothing else.
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_eq(a: str, b: str) -> bool:
    """ASCII case-insensitive equality (no Unicode case folding)."""
    return a.translate(ASCII_LOWER) == b.translate(ASCII_LOWER)
