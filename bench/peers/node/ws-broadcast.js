'use strict';
// Room broadcast server on the `ws` package: the Node reference for the
// `broadcast` benchmark scenario. Usage: node ws-broadcast.js [--listen ADDR]
//
// An upgrade request to /rooms/<room> joins that room (anything else gets
// 404); every text message a member sends is delivered unchanged to every
// other member of the same room (the per-room form of the `ws` README's
// `wss.clients.forEach(c => c.send(m))` broadcast). Binary messages are ignored.
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');
const { listenAddr, announce } = require('./listen');

const { host, port } = listenAddr(process.argv.slice(2));
const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('WebSocket upgrade required\n');
});
// permessage-deflate off, as for the echo peer; rooms replace wss.clients.
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
const rooms = new Map(); // room name -> Set of members

server.on('upgrade', (req, socket, head) => {
  const m = /^\/rooms\/([^/?]+)(?:\?.*)?$/.exec(req.url);
  if (!m) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => join(ws, m[1]));
});

function join(ws, name) {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = new Set()));
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    room.forEach((c) => {
      if (c !== ws && c.readyState === WebSocket.OPEN) c.send(data, { binary: false });
    });
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0 && rooms.get(name) === room) rooms.delete(name);
  });
  ws.on('error', () => {});
}

server.listen(port, host, () => announce(server));
