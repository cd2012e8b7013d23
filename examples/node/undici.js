#!/usr/bin/env node
// Node.js undici through an exitpool gateway: ProxyAgent, a new exit per tunnel, a sticky session.
//
//   EXITPOOL_GATEWAY=127.0.0.1:8080 EXITPOOL_USER=alice EXITPOOL_PASSWORD=secret \
//     node examples/node/undici.js http://TARGET/
//
// Debian 12: apt install nodejs node-undici. Debian's node finds /usr/share/nodejs by itself; another
// node (e.g. from nodesource) needs NODE_PATH=/usr/share/nodejs, or `npm install undici` instead.
// TARGET should answer with the caller's address (e.g. https://api.ipify.org). Each line printed:
// LABEL exit=- ip=<response body> (ProxyAgent tunnels every request through CONNECT, http:// too,
// so the X-Exitpool-Exit header on the gateway's CONNECT answer is not visible here).
'use strict';

const crypto = require('crypto');
const { ProxyAgent, request } = require('undici');

const gateway = process.env.EXITPOOL_GATEWAY || '127.0.0.1:8080';
const user = process.env.EXITPOOL_USER || 'user';
const password = process.env.EXITPOOL_PASSWORD || 'x';

// A ProxyAgent for the gateway. Options ("session-ab12", "country-us") ride in the proxy user name:
// USER-session-ab12. undici 5 takes the credentials as a Proxy-Authorization value (token).
function agent(...options) {
  const name = [user, ...options].join('-');
  const token = 'Basic ' + Buffer.from(`${name}:${password}`).toString('base64');
  return new ProxyAgent({ uri: `http://${gateway}`, token });
}

async function show(label, dispatcher, url) {
  const { statusCode, body } = await request(url, { dispatcher, headersTimeout: 20000, bodyTimeout: 20000 });
  const text = (await body.text()).trim();
  if (statusCode !== 200) throw new Error(`${label}: HTTP ${statusCode}: ${text}`);
  console.log(`${label} exit=- ip=${text}`);
}

async function main() {
  const url = process.argv[2] || process.env.TARGET_URL;
  if (!url) {
    console.error(`usage: ${process.argv[1]} URL (or TARGET_URL=URL)`);
    process.exit(2);
  }
  const session = process.env.EXITPOOL_SESSION || crypto.randomBytes(6).toString('hex');

  // 1. Rotating: one tunnel is one exit, and an agent keeps its tunnels alive; a fresh agent per
  //    request gets a fresh tunnel, so the next exit.
  for (let i = 1; i <= 3; i++) {
    const a = agent();
    try {
      await show(`rotate-${i}`, a, url);
    } finally {
      await a.close();
    }
  }
  // 2. A sticky session: fresh tunnels (a new agent each time) with the same session id keep the exit.
  for (let i = 1; i <= 3; i++) {
    const a = agent(`session-${session}`);
    try {
      await show(`session-${i}`, a, url);
    } finally {
      await a.close();
    }
  }
}

main().catch((err) => {
  console.error('error:', err.message || err);
  process.exit(1);
});
