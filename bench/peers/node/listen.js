'use strict';
// Shared helpers for the Node peers: `--listen HOST:PORT` parsing
// (default 127.0.0.1:0) and the `listening on ws://ADDR` line the bench
// harness waits for.

function listenAddr(argv) {
  let addr = '127.0.0.1:0';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--listen' && i + 1 < argv.length) {
      addr = argv[++i];
    } else {
      console.error(`unknown argument ${JSON.stringify(argv[i])}`);
      process.exit(2);
    }
  }
  const colon = addr.lastIndexOf(':');
  const host = addr.slice(0, colon).replace(/^\[|\]$/g, '');
  return { host, port: Number(addr.slice(colon + 1)) };
}

function announce(server) {
  const a = server.address();
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  process.stdout.write(`listening on ws://${host}:${a.port}\n`);
}

module.exports = { listenAddr, announce };
