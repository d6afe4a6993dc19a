// The Upstash REST store's two HTTP transports against a scripted node:http server: the Node
// default (node:http with keep-alive agents, adapters/http-node.js) and fetch (adapters/
// http-fetch.js, the default everywhere else, here Node's own fetch given as `fetch`). Each
// scenario runs through both and must end the same: the wire, redirects not followed, bytes that
// are not UTF-8, a body cut short, the sync token, cancellation, timeouts, connection reuse; then
// the things only the node transport has to get right: idle sockets never keep the process alive,
// a socket the server closed while idle is not reused, https.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentToolsError } from '#internal/errors.js';
import { UpstashRestStore } from '../../adapters/kv-upstash-rest.js';

const TOKEN = 'tok_transport_test_5f1c2e';

// A server whose answer each test sets: `handler(req, body, res)`; it logs every request and
// counts connections.
function scriptedServer(createServer = http.createServer, options = {}) {
  const state = { handler: null, log: [], connections: 0, sockets: new Set() };
  const server = createServer(options, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      state.log.push({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8'), bytes: body.length });
      state.handler(req, body, res);
    });
  });
  server.on('connection', (socket) => {
    state.connections++;
    state.sockets.add(socket);
    socket.on('close', () => state.sockets.delete(socket));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    const scheme = createServer === https.createServer ? 'https' : 'http';
    resolve(Object.assign(state, {
      server,
      url: `${scheme}://127.0.0.1:${port}`,
      reset(handler) {
        state.handler = handler;
        state.log = [];
        state.connections = 0;
      },
      close: () => new Promise((r) => {
        for (const s of state.sockets) s.destroy();
        server.close(r);
      }),
    }));
  }));
}

const json = (res, status, value, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
};

async function rejectsWith(promise, code) {
  const error = await promise.then(() => assert.fail(`expected ${code}`), (e) => e);
  assert.ok(error instanceof AgentToolsError, `not typed: ${error}`);
  assert.equal(error.code, code, error.message);
  assert.ok(!error.message.includes(TOKEN) && !JSON.stringify(error.details ?? {}).includes(TOKEN));
  return error;
}

const transports = {
  'node:http': {},
  fetch: { fetch: globalThis.fetch },
};

let server;
let elsewhere; // a second server a redirect points to
before(async () => {
  server = await scriptedServer();
  elsewhere = await scriptedServer();
});
after(async () => {
  await server.close();
  await elsewhere.close();
});

for (const [name, extra] of Object.entries(transports)) {
  describe(`transport ${name}`, () => {
    const store = (options = {}) => new UpstashRestStore({ url: server.url, token: TOKEN, random: () => 0, backoffMs: 1, ...extra, ...options });

    test('is the one in use', () => {
      assert.equal(store().transport, name);
    });

    test('the wire: POST / and /pipeline, JSON body with its byte length, the token only in Authorization', async () => {
      server.reset((req, body, res) => {
        const commands = JSON.parse(body.toString('utf8'));
        if (req.url === '/pipeline') json(res, 200, commands.map((c) => ({ result: c[1] })));
        else json(res, 200, { result: commands[1] });
      });
      const s = store();
      assert.equal(await s.command(['ECHO', 'héllo ✓ 𝄞']), 'héllo ✓ 𝄞');
      const both = await Promise.all([s.command(['ECHO', 'a']), s.command(['ECHO', 'b'])]);
      assert.deepEqual(both, ['a', 'b']);
      assert.deepEqual(server.log.map((r) => [r.method, r.url]), [['POST', '/'], ['POST', '/pipeline']]);
      for (const r of server.log) {
        assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
        assert.match(r.headers['content-type'], /^application\/json/);
        assert.equal(Number(r.headers['content-length']), r.bytes);
        // Only codings the transport decodes: none for node:http, fetch's own list for fetch.
        if (name === 'node:http') assert.equal(r.headers['accept-encoding'], 'identity');
        assert.ok(!r.url.includes(TOKEN));
      }
      assert.deepEqual(JSON.parse(server.log[0].body), ['ECHO', 'héllo ✓ 𝄞']);
    });

    test('a redirect is not followed: HOST_ERROR with the status, and the token goes nowhere else', async () => {
      for (const status of [301, 302, 307, 308]) {
        server.reset((req, body, res) => {
          res.writeHead(status, { location: `${elsewhere.url}/` });
          res.end();
        });
        elsewhere.reset((req, body, res) => json(res, 200, { result: 'followed' }));
        const error = await rejectsWith(store().command(['GET', 'a']), 'HOST_ERROR');
        assert.equal(error.details.status, status);
        assert.equal(elsewhere.log.length, 0);
      }
    });

    test('bytes that are not UTF-8 become U+FFFD', async () => {
      server.reset((req, body, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(Buffer.concat([Buffer.from('{"result":"a'), Buffer.from([0xff, 0xc3]), Buffer.from('b"}')]));
      });
      assert.equal(await store().command(['GET', 'a']), 'a\uFFFD\uFFFDb');
    });

    test('a body cut short is a network error, retried, then HOST_ERROR', async () => {
      server.reset((req, body, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 });
        res.write('{"result":');
        setTimeout(() => res.destroy(), 5);
      });
      const error = await rejectsWith(store({ retries: 2 }).command(['GET', 'a']), 'HOST_ERROR');
      assert.match(error.message, /network error/);
      assert.equal(server.log.length, 3);
    });

    test('the upstash-sync-token header is read and sent back', async () => {
      let n = 0;
      server.reset((req, body, res) => {
        n++;
        json(res, 200, { result: n }, { 'upstash-sync-token': `sync-${n}` });
      });
      const s = store();
      assert.equal(await s.command(['INCR', 'a']), 1);
      assert.equal(await s.command(['INCR', 'a']), 2);
      assert.deepEqual(server.log.map((r) => r.headers['upstash-sync-token']), [undefined, 'sync-1']);
    });

    test('cancelled during a request: CANCELLED at once, and the request is abandoned', async () => {
      let closed;
      const closedOnServer = new Promise((resolve) => { closed = resolve; });
      server.reset((req, body, res) => {
        res.on('close', closed); // never answered
      });
      const controller = new AbortController();
      const pending = store().command(['GET', 'a'], controller.signal);
      while (server.log.length === 0) await new Promise((r) => setTimeout(r, 2));
      const t0 = performance.now();
      controller.abort();
      await rejectsWith(pending, 'CANCELLED');
      assert.ok(performance.now() - t0 < 100);
      await closedOnServer;
      assert.equal(server.log.length, 1);
    });

    test('no answer within timeoutMs: TIMEOUT after every attempt', async () => {
      server.reset(() => {}); // never answered
      await rejectsWith(store({ timeoutMs: 50, retries: 1 }).command(['GET', 'a']), 'TIMEOUT');
      assert.equal(server.log.length, 2);
    });

    test('sequential requests reuse one kept-alive connection', async () => {
      server.reset((req, body, res) => json(res, 200, { result: 'OK' }));
      const s = store();
      await s.command(['PING']); // the agent may already hold a socket to this server from before
      server.reset((req, body, res) => json(res, 200, { result: 'OK' }));
      for (let i = 0; i < 20; i++) assert.equal(await s.command(['PING']), 'OK');
      assert.equal(server.log.length, 20);
      // node:http: the socket of the warm-up command; undici opens a second one once, because its
      // first socket is still busy when the next request is issued right after a response.
      assert.ok(server.connections <= (name === 'fetch' ? 2 : 0), `${server.connections} new connections`);
    });
  });
}

describe('the node transport only', () => {
  test('idle kept-alive sockets do not keep the process running', async () => {
    server.reset((req, body, res) => json(res, 200, { result: 'PONG' }));
    server.server.keepAliveTimeout = 60_000;
    const adapters = fileURLToPath(new URL('../../adapters/kv-upstash-rest.js', import.meta.url));
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const { UpstashRestStore } = await import(${JSON.stringify(adapters)});
      const store = new UpstashRestStore({ url: process.argv[1], token: 'child-token' });
      console.log(store.transport, await store.command(['PING']));
    `, server.url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const t0 = performance.now();
    const timer = setTimeout(() => child.kill(), 10_000);
    const code = await new Promise((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    server.server.keepAliveTimeout = 5000;
    assert.equal(code, 0, 'the child was still running after 10 s');
    assert.equal(out.trim(), 'node:http PONG');
    assert.ok(performance.now() - t0 < 5000);
  });

  test('a socket the server closed while idle is not reused', async () => {
    server.reset((req, body, res) => json(res, 200, { result: 'OK' }));
    server.server.keepAliveTimeout = 20;
    try {
      const s = new UpstashRestStore({ url: server.url, token: TOKEN, retries: 0 });
      for (let i = 0; i < 3; i++) {
        assert.equal(await s.command(['PING']), 'OK');
        await new Promise((r) => setTimeout(r, 80)); // the server has closed the idle socket by now
      }
      assert.equal(server.log.length, 3);
    } finally {
      server.server.keepAliveTimeout = 5000;
    }
  });

  test('https, with a certificate the process trusts (NODE_EXTRA_CA_CERTS)', async (t) => {
    let haveOpenssl = true;
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
    } catch {
      haveOpenssl = false;
    }
    if (!haveOpenssl) {
      t.skip('SKIP: openssl is not installed (scripts/setup.sh installs it); the https path is not tested');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'agent-tools-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
      const secure = await scriptedServer(https.createServer, { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) });
      try {
        secure.reset((req, body, res) => json(res, 200, { result: `${req.headers.authorization === 'Bearer child-token'}` }));
        const adapters = fileURLToPath(new URL('../../adapters/kv-upstash-rest.js', import.meta.url));
        const run = (env) => new Promise((resolve) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', `
            const { UpstashRestStore } = await import(${JSON.stringify(adapters)});
            for (const options of [{}, { fetch: globalThis.fetch }]) {
              const store = new UpstashRestStore({ url: process.argv[1], token: 'child-token', retries: 0, ...options });
              try { console.log(store.transport, await store.command(['PING'])); }
              catch (e) { console.log(store.transport, e.code); }
            }
          `, secure.url], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
          let out = '';
          child.stdout.on('data', (d) => { out += d; });
          child.on('exit', () => resolve(out.trim().split('\n')));
        });
        // Trusted: both transports speak TLS to it. Untrusted: both refuse, typed.
        assert.deepEqual(await run({ NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') }), ['node:http true', 'fetch true']);
        assert.deepEqual(await run({ NODE_EXTRA_CA_CERTS: '' }), ['node:http HOST_ERROR', 'fetch HOST_ERROR']);
      } finally {
        await secure.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
