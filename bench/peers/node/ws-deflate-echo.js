'use strict';
// Echo server on the `ws` package with permessage-deflate on (`perMessageDeflate:
// true`: ws's defaults, zlib in C at its default level, 1 KiB threshold,
// context takeover). Usage: node ws-deflate-echo.js [--listen ADDR]
const http = require('http');
const { WebSocketServer } = require('ws');
const { listenAddr, announce } = require('./listen');

const { host, port } = listenAddr(process.argv.slice(2));
const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('WebSocket upgrade required\n');
});
const wss = new WebSocketServer({ server, perMessageDeflate: true });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
server.listen(port, host, () => announce(server));
