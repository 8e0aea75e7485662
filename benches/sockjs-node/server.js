// sockjs-node (npm `sockjs`, pinned in package.json) serving the two prefixes that
// scripts/bench-sockjs.sh measures, with the semantics of stompede's sockjs_test_server example:
//   /echo       every message back to its sender
//   /broadcast  every message to every open session of /broadcast, the sender included
// Options are sockjs-node's defaults, spelled out so that the comparison is explicit:
// response_limit 128 KiB (the example runs with --stream-bytes-limit 131072 to match),
// heartbeat 25 s, disconnect delay 5 s, websocket on. Plain `http` module, one process.
//
// Usage: node server.js [--port 8082] [--host 127.0.0.1]
// Ready when GET /echo answers "Welcome to SockJS!\n". SIGTERM and SIGINT stop it.
'use strict';

const http = require('http');
const sockjs = require('sockjs');

function parseArgs(argv) {
  const opts = { port: 8082, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--port' && value !== undefined) {
      opts.port = Number(value);
      i++;
    } else if (arg === '--host' && value !== undefined) {
      opts.host = value;
      i++;
    } else {
      console.error(`usage: node server.js [--port PORT] [--host HOST] (unknown: ${arg})`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    console.error(`invalid --port ${opts.port}`);
    process.exit(2);
  }
  return opts;
}

const options = {
  response_limit: 128 * 1024,
  heartbeat_delay: 25000,
  disconnect_delay: 5000,
  websocket: true,
  jsessionid: false,
  sockjs_url: '/vendor/sockjs.min.js',
  // sockjs-node logs every request at 'info'; a benchmark keeps only errors.
  log: (severity, line) => {
    if (severity === 'error') console.error(line);
  },
};

const echo = sockjs.createServer(options);
echo.on('connection', (conn) => {
  conn.on('data', (message) => conn.write(message));
});

const broadcast = sockjs.createServer(options);
const open = new Set();
broadcast.on('connection', (conn) => {
  open.add(conn);
  conn.on('data', (message) => {
    for (const peer of open) peer.write(message);
  });
  conn.on('close', () => open.delete(conn));
});

const { port, host } = parseArgs(process.argv.slice(2));
const server = http.createServer();
echo.installHandlers(server, { prefix: '/echo' });
broadcast.installHandlers(server, { prefix: '/broadcast' });
server.listen(port, host, () => {
  console.error(`sockjs-node ${require('sockjs/package.json').version} on http://${host}:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
