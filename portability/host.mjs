// A minimal WebSocket host for a ws-edge component transpiled by jco.
//
// Usage: node host.mjs MODULE.js [ADDR:PORT]
//
// MODULE.js is what `jco transpile COMPONENT --instantiation sync` wrote for a
// component of world `ws-edge:websocket/websocket-server`. Each connection
// gets its own instance (as in ws-edge's wasmtime host), so a trap ends one
// connection, not the server. The host owns the sockets, the clock and the
// limits; the component sees only bytes and milliseconds (wit/websocket.wit).
// Prints `listening on ws://ADDR:PORT` once bound; port 0 picks a free port.

import * as shim from '@bytecodealliance/preview2-shim';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const HEAD_LIMIT = 8 * 1024; // the component answers 431 beyond this itself
const HEAD_TIMEOUT_MS = 10_000; // a client must send its head within this
const LINGER_MS = 5_000; // after our FIN, wait this long for the peer's
const INTERFACE = 'ws-edge:websocket/websocket-request@0.2.0';
// A close frame with code 1011 (internal error), for a trap after the 101.
const CLOSE_1011 = Buffer.from([0x88, 0x02, 0x03, 0xf3]);
// A response the host writes itself (408, 500).
const plain = (status, reason) =>
  Buffer.from(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);

const [modulePath, listen = '127.0.0.1:0'] = process.argv.slice(2);
if (!modulePath) {
  console.error('usage: node host.mjs MODULE.js [ADDR:PORT]');
  process.exit(2);
}
const component = await import(pathToFileURL(path.resolve(modulePath)).href);
if (typeof component.instantiate !== 'function') {
  console.error(`${modulePath}: transpile with \`jco transpile --instantiation sync\``);
  process.exit(2);
}
// Core modules are compiled once and instantiated per connection.
const compiled = new Map();
const getCoreModule = (name) => {
  if (!compiled.has(name)) {
    compiled.set(name, new WebAssembly.Module(readFileSync(path.join(path.dirname(modulePath), name))));
  }
  return compiled.get(name);
};
// WASI imports (`wasi:cli/stdout`, ...) come from preview2-shim
// (`shim.cli.stdout`); std links them, the protocol code does no I/O.
const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
const imports = new Proxy({}, {
  get(_, key) {
    const m = typeof key === 'string' && /^wasi:([a-z]+)\/([a-z-]+)/.exec(key);
    return m ? shim[m[1]]?.[camel(m[2])] : undefined;
  },
});
const instantiate = () => component.instantiate(getCoreModule, imports)[INTERFACE];
if (typeof instantiate()?.handleHead !== 'function') {
  console.error(`${modulePath} does not export ${INTERFACE}`);
  process.exit(2);
}

// Times: whole milliseconds on Node's monotonic clock, as the WIT u64.
// WS_EDGE_CLOCK_RATE > 1 runs the component's clock faster than real time
// (tests use it to reach keepalive deadlines quickly).
const rate = Number(process.env.WS_EDGE_CLOCK_RATE ?? 1);
if (!(rate > 0)) throw new Error('WS_EDGE_CLOCK_RATE must be a positive number');
const now = () => BigInt(Math.floor(performance.now() * rate));
const dispose = (resource) => resource[Symbol.dispose ?? Symbol.for('dispose')]();

// The WIT `ip-address` of an address as Node reports it.
function ipAddress(text) {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (net.isIPv4(text)) return { tag: 'ipv4', val: text.split('.').map(Number) };
  // IPv6: expand `::`, and an embedded dotted quad into two groups.
  let groups = text;
  if (mapped) groups = `::ffff:${ipAddress(mapped[1]).val.reduce((s, b, i) => s + (i === 2 ? ':' : '') + b.toString(16).padStart(2, '0'), '')}`;
  const [left, right = null] = groups.split('::');
  const parse = (part) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const head = parse(left);
  const tail = right === null ? [] : parse(right);
  const zeros = right === null ? [] : new Array(8 - head.length - tail.length).fill(0);
  return { tag: 'ipv6', val: [...head, ...zeros, ...tail] };
}

function serve(socket) {
  let ws = null; // this connection's instance of the interface
  let head = Buffer.alloc(0); // bytes read before the head was answered
  let conn = null; // the component's `connection`, once accepted
  let timer = null; // the pending `tick`
  let done = false; // the component has nothing more to say

  socket.setNoDelay(true);

  // Writes the host's last bytes, closes the sending side and lingers so
  // they are read before the socket goes (docs/hosting.md).
  const lastWords = (bytes) => {
    socket.end(bytes);
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
  const headTimer = setTimeout(() => {
    finish();
    lastWords(plain(408, 'Request Timeout'));
  }, HEAD_TIMEOUT_MS);

  // Drops the resource exactly once; the connection may not be used after.
  // After a trap the instance is never called again, not even to drop it.
  const finish = (trapped = false) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    clearTimeout(headTimer);
    if (conn && !trapped) dispose(conn);
    conn = null;
  };

  // Runs a call into the component. A trap (a JS exception here) ends this
  // connection, not the process: 500 before the 101, close 1011 after.
  const guard = (fn) => (...args) => {
    try {
      fn(...args);
    } catch (err) {
      console.error(`component call failed, dropping ${socket.remoteAddress}:${socket.remotePort}: ${err}`);
      const upgraded = conn !== null;
      const wasDone = done;
      finish(true);
      if (wasDone || socket.destroyed) return;
      lastWords(upgraded ? CLOSE_1011 : plain(500, 'Internal Server Error'));
    }
  };

  // Carries out one `transmit`: write its bytes, then follow its state.
  // How the connection ended decides how the socket closes (the server
  // closes first, after the bytes above).
  const apply = (t) => {
    if (t.bytes.length > 0 && !socket.write(t.bytes)) socket.pause();
    clearTimeout(timer);
    if (t.state.tag === 'closed') {
      finish();
      switch (t.state.val.tag) {
        case 'clean': // the peer sends nothing more: close at once
          socket.end(() => socket.destroy());
          break;
        case 'lost':
          socket.destroy();
          break;
        default: // failed, timed-out: linger so our close frame is read
          socket.end();
          setTimeout(() => socket.destroy(), LINGER_MS).unref();
      }
    } else if (t.deadline !== undefined) {
      const wait = Number(t.deadline - now()) / rate;
      timer = setTimeout(guard(() => apply(conn.tick(now()))), Math.max(0, Math.ceil(wait)));
    }
  };

  socket.on('drain', () => socket.resume());
  socket.on('data', guard((chunk) => {
    if (done) return;
    if (conn) return apply(conn.receive(chunk, now()));
    head = Buffer.concat([head, chunk]);
    const peer = socket.remoteAddress === undefined
      ? undefined
      : { address: ipAddress(socket.remoteAddress), port: socket.remotePort };
    const transport = { peer, tls: false };
    ws ??= instantiate();
    const result = ws.handleHead(head, transport, now());
    if (result.tag === 'incomplete') {
      // Within the limit the component keeps asking for more; never buffer
      // more than the limit even if it did not answer.
      if (head.length > HEAD_LIMIT) socket.destroy();
      return;
    }
    clearTimeout(headTimer);
    const { consumed, handshake } = result.val;
    socket.write(handshake.response.wire);
    if (!handshake.connection) {
      finish();
      socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
      return;
    }
    conn = handshake.connection;
    const rest = head.subarray(consumed);
    head = null;
    // The handshake arms no timer: `receive` (or a `tick` before any
    // deadline, which does nothing else) returns the first deadline.
    apply(rest.length > 0 ? conn.receive(rest, now()) : conn.tick(now()));
  }));
  // The peer ended the stream or the socket failed: tell the component.
  const gone = guard(() => {
    if (!done && conn) conn.disconnected(now());
    finish();
  });
  socket.on('end', () => {
    gone();
    socket.end();
  });
  socket.on('error', gone);
  socket.on('close', gone);
  return { closeGoingAway: guard(() => conn && !done && apply(conn.close(1001, 'server shutting down', now()))) };
}

const sessions = new Set();
const server = net.createServer((socket) => {
  const session = serve(socket);
  sessions.add(session);
  socket.on('close', () => sessions.delete(session));
});

const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep).replace(/^\[|\]$/g, '');
server.listen(Number(listen.slice(sep + 1)), host, () => {
  const { address, port, family } = server.address();
  console.log(`listening on ws://${family === 'IPv6' ? `[${address}]` : address}:${port}`);
});

// Shutdown: close handshakes with 1001, then stop accepting and exit.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const s of sessions) s.closeGoingAway();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}
