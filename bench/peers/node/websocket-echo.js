'use strict';
// Echo server on WebSocket-Node (the `websocket` package).
// Usage: node websocket-echo.js [--listen ADDR]
const http = require('http');
const WebSocketServer = require('websocket').server;
const { listenAddr, announce } = require('./listen');

const { host, port } = listenAddr(process.argv.slice(2));
const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('WebSocket upgrade required\n');
});
// Library defaults, except that permessage-deflate is not offered (it is not by
// default either) and the request is accepted explicitly, as WebSocket-Node's
// documentation recommends over autoAcceptConnections.
const wss = new WebSocketServer({ httpServer: server, autoAcceptConnections: false });
wss.on('request', (request) => {
  const conn = request.accept(null, request.origin);
  conn.on('message', (msg) => {
    if (msg.type === 'utf8') conn.sendUTF(msg.utf8Data);
    else conn.sendBytes(msg.binaryData);
  });
  conn.on('error', () => {});
});
server.listen(port, host, () => announce(server));
