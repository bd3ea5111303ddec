'use strict';
// Node `ws` client for the permessage-deflate end-to-end test.
// Usage: NODE_PATH=bench/peers/node/node_modules node deflate_client.js ws://HOST:PORT/
// Offers permessage-deflate (`perMessageDeflate: true`), round-trips
// compressible, incompressible, fragmented and threshold-crossing messages,
// then checks a client that does not offer it is served uncompressed.
// Prints "ok" and exits 0 on success.
const assert = require('assert');
const crypto = require('crypto');
const WebSocket = require('ws');

function opened(ws) {
  return new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
}

function receiver(ws) {
  const queue = [];
  let wake = null;
  ws.on('message', (data, isBinary) => {
    queue.push({ data, isBinary });
    if (wake) {
      wake();
      wake = null;
    }
  });
  return async () => {
    while (queue.length === 0) await new Promise((r) => { wake = r; });
    return queue.shift();
  };
}

function jsonText(n) {
  const items = [];
  for (let i = 0; i < n; i++) items.push(`{"id":${i},"user":"user${i % 7}","text":"hello there"}`);
  return items.join(',');
}

async function echoText(ws, next, text) {
  ws.send(text);
  const m = await next();
  assert.strictEqual(m.isBinary, false);
  assert.strictEqual(m.data.toString(), text);
}

async function main(url) {
  const ws = new WebSocket(url, { perMessageDeflate: true, maxPayload: 4 << 20 });
  await opened(ws);
  assert.ok(ws.extensions.startsWith('permessage-deflate'), ws.extensions);
  const next = receiver(ws);

  await echoText(ws, next, jsonText(6000));

  const noise = crypto.randomBytes(60000);
  ws.send(noise);
  let m = await next();
  assert.ok(m.isBinary);
  assert.ok(Buffer.compare(m.data, noise) === 0, 'binary echo differs');

  // Fragmented and compressed: RSV1 on the first of the frames.
  const text = jsonText(2000);
  const parts = [];
  for (let i = 0; i < text.length; i += 5000) parts.push(text.slice(i, i + 5000));
  parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1, compress: true }));
  m = await next();
  assert.strictEqual(m.data.toString(), text);

  for (const n of [1023, 1024, 1025]) await echoText(ws, next, 'z'.repeat(n));

  ws.close(1000, 'done');
  const [code] = await new Promise((r) => ws.once('close', (...a) => r(a)));
  assert.strictEqual(code, 1000);

  const plain = new WebSocket(url, { perMessageDeflate: false });
  await opened(plain);
  assert.strictEqual(plain.extensions, '');
  await echoText(plain, receiver(plain), jsonText(100));
  plain.close(1000);
  await new Promise((r) => plain.once('close', r));
  console.log('ok');
}

main(process.argv[2]).then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
