// Bare Fastify + ws: the reference our server is measured against (bench/reference.py).
//   node server.js PORT SESSIONS_FILE SESSION_FILE MESSAGES_FILE
// GET /sessions and GET /session serve the given files' bytes as JSON; GET /ws is a WebSocket;
// POST /broadcast sends every line of MESSAGES_FILE to every connected socket, as Maestro's
// server broadcasts (one ws.send per client per message).
'use strict';
const fs = require('fs');
const Fastify = require('fastify');
const { WebSocketServer } = require('ws');

const [port, sessionsFile, sessionFile, messagesFile] = process.argv.slice(2);
const sessions = fs.readFileSync(sessionsFile);
const session = fs.readFileSync(sessionFile);
const messages = fs.readFileSync(messagesFile, 'utf8').split('\n').filter(Boolean);

const app = Fastify({ logger: false });
const wss = new WebSocketServer({ noServer: true });
app.get('/sessions', (req, reply) => { reply.type('application/json').send(sessions); });
app.get('/session', (req, reply) => { reply.type('application/json').send(session); });
app.post('/broadcast', (req, reply) => {
  for (const message of messages) {
    for (const client of wss.clients) client.send(message);
  }
  reply.send({ sent: messages.length, clients: wss.clients.size });
});
app.server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => ws.send('{"type":"init"}'));
});
app.listen({ port: Number(port), host: '127.0.0.1' }).then(() => {
  process.stdout.write(`listening ${port}\n`);
});
