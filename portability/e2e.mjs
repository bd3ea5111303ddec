// End-to-end check of host.mjs: starts the host on 127.0.0.1:0 with a
// transpiled echo component, talks to it with the `ws` client and with raw
// sockets, and exits non-zero on the first failure.
//
// Usage: node e2e.mjs MODULE.js [PANIC-MODULE.js]
//
// PANIC-MODULE.js, if given, is the transpiled tests/components/panic (an echo
// that traps on the text message `panic`): a trap must end that connection
// only.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const TIMEOUT_MS = 30_000;
const here = path.dirname(fileURLToPath(import.meta.url));
const [modulePath, panicModulePath] = process.argv.slice(2);
assert.ok(modulePath, 'usage: node e2e.mjs MODULE.js');

const watchdog = setTimeout(() => fail(new Error(`timed out after ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
const hosts = [];
function fail(err) {
  console.error(`FAIL: ${err.stack ?? err}`);
  for (const h of hosts) h.kill('SIGKILL');
  process.exit(1);
}

// The RFC 6455 §1.3 sample request, and its expected accept value.
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const head = (version = 13) =>
  Buffer.from(
    'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n' +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n` +
      `Origin: http://example.com\r\nSec-WebSocket-Version: ${version}\r\n\r\n`,
  );

// A masked client frame (payload < 126 bytes).
function clientFrame(opcode, payload) {
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = Buffer.from(payload).map((b, i) => b ^ mask[i % 4]);
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | body.length]), mask, body]);
}

// Everything a raw socket receives until the server closes it.
async function rawExchange(url, writes) {
  const { hostname, port } = new URL(url);
  const sock = net.connect(Number(port), hostname);
  await once(sock, 'connect');
  const chunks = [];
  sock.on('data', (c) => chunks.push(c));
  for (const w of writes) sock.write(w);
  await once(sock, 'close');
  return Buffer.concat(chunks);
}

// Starts host.mjs and resolves to its ws:// URL once it is listening.
async function startHost(env = {}, module = modulePath) {
  const proc = spawn(process.execPath, [path.join(here, 'host.mjs'), module, '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  hosts.push(proc);
  proc.stderr.on('data', (d) => process.stderr.write(`host stderr: ${d}`));
  proc.on('exit', (code, sig) => proc.expectedExit || fail(new Error(`host exited: ${code ?? sig}`)));
  const [line] = await once(readline.createInterface({ input: proc.stdout }), 'line');
  const url = line.match(/^listening on (ws:\/\/\S+)$/)?.[1];
  assert.ok(url, `unexpected first line from host: ${line}`);
  console.log(`host: ${line}`);
  return { proc, url };
}

async function main() {
  const { proc: host, url } = await startHost();

  // 1. Text, binary, ping and a clean close through a real client.
  {
    const ws = new WebSocket(url);
    const got = [];
    ws.on('message', (data, isBinary) => got.push({ data, isBinary }));
    await once(ws, 'open');
    ws.send('héllo wörld ✓');
    ws.send(Buffer.from([0, 1, 2, 0xfe, 0xff]));
    ws.ping('p');
    const [pong] = await once(ws, 'pong');
    assert.equal(pong.toString(), 'p');
    ws.close(1000, 'done');
    const [code] = await once(ws, 'close');
    assert.equal(code, 1000, 'close code');
    assert.equal(got.length, 2, 'two echoed messages');
    assert.deepEqual([got[0].isBinary, got[0].data.toString()], [false, 'héllo wörld ✓']);
    assert.deepEqual([got[1].isBinary, [...got[1].data]], [true, [0, 1, 2, 0xfe, 0xff]]);
    console.log('ok: text, binary, ping/pong, close 1000');
  }

  // 2. Head split into single bytes, first frame in the same write as the
  //    head's last byte, then a close: the 101 carries the RFC accept value.
  {
    const h = head();
    const writes = [...h.subarray(0, -1)].map((b) => Buffer.from([b]));
    writes.push(Buffer.concat([h.subarray(-1), clientFrame(0x1, 'first'), clientFrame(0x8, [0x03, 0xe8])]));
    const out = await rawExchange(url, writes);
    const end = out.indexOf('\r\n\r\n') + 4;
    const response = out.subarray(0, end).toString('latin1');
    assert.match(response, /^HTTP\/1\.1 101 /);
    assert.match(response, new RegExp(`\r\nSec-WebSocket-Accept: ${ACCEPT.replace(/[+]/g, '\\+')}\r\n`, 'i'));
    const frames = out.subarray(end);
    assert.deepEqual([...frames.subarray(0, 7)], [0x81, 5, ...Buffer.from('first')], 'echo of the first frame');
    assert.deepEqual([...frames.subarray(7)], [0x88, 2, 0x03, 0xe8], 'close echo, then TCP close');
    console.log('ok: byte-at-a-time head, frame after head, RFC 6455 §1.3 accept value');
  }

  // 3. Unsupported version: 426 and the server closes the connection.
  {
    const out = (await rawExchange(url, [head(7)])).toString('latin1');
    assert.match(out, /^HTTP\/1\.1 426 /);
    assert.match(out, /\r\nSec-WebSocket-Version: [^\r]*\b13\b/i);
    console.log('ok: version 7 -> 426, connection closed');
  }

  // 3b. A head over the 8 KiB limit: 431, and the host stays up.
  {
    const big = Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(9000)}\r\n`);
    const out = (await rawExchange(url, [big])).toString('latin1');
    assert.match(out, /^HTTP\/1\.1 431 /);
    console.log('ok: 9 KB head without its end -> 431, connection closed');
  }

  // 4. Shutdown: SIGTERM makes the host close open connections with 1001.
  {
    const ws = new WebSocket(url);
    await once(ws, 'open');
    host.expectedExit = true;
    const exited = once(host, 'exit');
    host.kill('SIGTERM');
    const [code] = await once(ws, 'close');
    assert.equal(code, 1001, 'going-away close code');
    const [status] = await exited;
    assert.equal(status, 0, 'host exit status');
    console.log('ok: SIGTERM -> close 1001, host exits 0');
  }

  // 5. Timers: with the component's clock at 100x, a silent client gets a
  //    keepalive ping after 20 s (0.2 s real) and, still silent after the
  //    10 s grace, is dropped without a close frame (1006).
  {
    const { proc, url: fastUrl } = await startHost({ WS_EDGE_CLOCK_RATE: '100' });
    const started = performance.now();
    const out = await rawExchange(fastUrl, [head()]);
    const elapsed = performance.now() - started;
    const frames = out.subarray(out.indexOf('\r\n\r\n') + 4);
    assert.match(out.toString('latin1'), /^HTTP\/1\.1 101 /);
    assert.equal(frames[0], 0x89, 'a ping frame follows the 101');
    assert.equal(frames.length, 2 + (frames[1] & 0x7f), 'nothing after the ping (no close frame)');
    assert.ok(elapsed >= 250, `dropped after ${elapsed.toFixed(0)} ms, before the deadlines`);
    proc.expectedExit = true;
    proc.kill('SIGTERM');
    console.log(`ok: keepalive ping, drop after grace (${elapsed.toFixed(0)} ms real)`);
  }

  // 6. A trap ends its own connection only: the next one is served.
  if (panicModulePath) {
    const { proc, url: panicUrl } = await startHost({}, panicModulePath);
    const talk = async (text) => {
      const ws = new WebSocket(panicUrl);
      const got = [];
      ws.on('message', (data) => got.push(data.toString()));
      await once(ws, 'open');
      ws.send(text);
      ws.close(1000);
      const [code] = await once(ws, 'close');
      return { code, got };
    };
    const trapped = await talk('panic');
    assert.equal(trapped.code, 1011, 'the trapping connection is closed with 1011');
    assert.deepEqual(await talk('still here'), { code: 1000, got: ['still here'] });
    proc.expectedExit = true;
    proc.kill('SIGTERM');
    console.log('ok: trap in one connection closes it (1011), the next is served');
  }
}

main().then(
  () => {
    clearTimeout(watchdog);
    console.log('PASS');
  },
  fail,
);
