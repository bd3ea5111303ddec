// The examples/compose handler in JavaScript: a `websocket-handler` component.
//
// componentize-js builds this module into a component that exports
// `ws-edge:websocket/handler`; `wac plug` then plugs it into the protocol
// component (examples/compose/protocol), which does all the HTTP and
// WebSocket work. Behaviour, identical to the Rust handler so that one test
// suite (host/tests/e2e/compose.rs) runs against both:
//
// - `/compose` is accepted; of the subprotocols offered, `shout.v1` is
//   preferred over `plain.v1` (compared ASCII case-insensitively) and the
//   response carries `X-Handler: compose-example`;
// - any other path is rejected with `403`, a reason and a body;
// - each text message comes back prefixed with its number on the
//   connection (`#1 HELLO`), upper-cased under `shout.v1`; binary messages
//   come back reversed;
// - `bye` is answered with `#n goodbye` and a close with `1000`;
// - `throw` throws (the host ends this connection with `1011` and logs the
//   error), as does a request for `/compose/throw` (`500`).
//
// WIT to JavaScript: records are objects with camelCase fields, variants
// `{ tag, val }`, `option<T>` is `T` or `undefined`, `list<u8>` a
// `Uint8Array`, and the exported resource `session` is the class `Session`
// of the exported `handler` object.

/** The subprotocols this handler speaks, most preferred first. */
const PROTOCOLS = ["shout.v1", "plain.v1"];

const encoder = new TextEncoder();

/** A header field; WIT header values are bytes. */
function field(name, value) {
  return { name, value: encoder.encode(value) };
}

/** ASCII case-insensitive equality (no Unicode case folding). */
function asciiEq(a, b) {
  const lower = (s) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return a.length === b.length && lower(a) === lower(b);
}

/** One connection's state: kept here, never in module globals. */
class Session {
  constructor(shout) {
    this.shout = shout;
    this.count = 0;
  }

  onMessage(message) {
    this.count += 1;
    const n = this.count;
    if (message.tag === "binary") {
      return { send: [{ tag: "binary", val: message.val.slice().reverse() }], close: undefined };
    }
    let text = message.val;
    if (text === "bye") {
      return { send: [{ tag: "text", val: `#${n} goodbye` }], close: { code: 1000, reason: "bye" } };
    }
    if (text === "throw") {
      throw new Error(`handler failure: asked to throw by message #${n}`);
    }
    if (this.shout) {
      text = text.toUpperCase();
    }
    return { send: [{ tag: "text", val: `#${n} ${text}` }], close: undefined };
  }

  closed(_frame) {}
}

export const handler = {
  Session,

  decide(request) {
    if (request.path === "/compose/throw") {
      throw new Error(`handler failure: asked to throw by a request for ${request.path}`);
    }
    if (request.path !== "/compose") {
      return {
        tag: "reject",
        val: {
          status: 403,
          reason: `${request.path} is not served here`,
          headers: [field("X-Handler", "compose-example")],
          body: encoder.encode("only /compose is served here\n"),
        },
      };
    }
    // The protocol component echoes the client's own spelling; compare
    // ASCII case-insensitively as it does.
    let protocol;
    for (const wanted of PROTOCOLS) {
      protocol = request.protocols.find((offered) => asciiEq(offered, wanted));
      if (protocol !== undefined) break;
    }
    const shout = protocol !== undefined && asciiEq(protocol, PROTOCOLS[0]);
    const options = {
      protocol,
      headers: [field("X-Handler", "compose-example")],
      cookies: [],
    };
    return { tag: "accept", val: [options, new Session(shout)] };
  },
};
