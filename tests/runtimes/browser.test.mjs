// Runs the package in headless Chromium: a page served over http://127.0.0.1 imports the unbundled
// package through an import map (browser condition: the wasm is fetched and compiled while it
// streams) under a CSP that allows wasm but not eval, and runs the shared workload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const SEED = 0x5eed;

// Only these trees are served: the package's sources and glue, and the runtime test fixtures.
const SERVED = ['js/src', 'js/dist', 'tests/runtimes'].map((dir) => resolve(ROOT, dir));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm', // lets the loader use WebAssembly.compileStreaming
};

// What a browser cannot resolve by itself: the package name and its `#wasm-module` import.
const IMPORT_MAP = JSON.stringify({
  imports: {
    '@growthub/agent-tools/runtime': '/js/src/runtime.js',
    '#wasm-module': '/js/src/load/browser.js',
  },
});

// script-src 'self' without 'unsafe-eval': an eval or new Function in the glue throws. The inline
// import map is allowed by its hash (not 'unsafe-inline'); 'wasm-unsafe-eval' allows compiling wasm.
const IMPORT_MAP_HASH = createHash('sha256').update(IMPORT_MAP).digest('base64');
const CSP = `default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'sha256-${IMPORT_MAP_HASH}'; object-src 'none'`;

function startServer() {
  const requests = [];
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://127.0.0.1');
    requests.push(pathname);
    try {
      if (pathname === '/favicon.ico') return void res.writeHead(204).end();
      if (pathname === '/') {
        const html = await readFile(join(ROOT, 'tests/runtimes/browser/index.html'), 'utf8');
        res.writeHead(200, { 'Content-Type': TYPES['.html'], 'Content-Security-Policy': CSP, 'Cache-Control': 'no-store' });
        return void res.end(html.replace('<!--IMPORTMAP-->', `<script type="importmap">${IMPORT_MAP}</script>`));
      }
      const file = resolve(ROOT, '.' + decodeURIComponent(pathname));
      const inside = SERVED.some((dir) => file.startsWith(dir + sep)); // resolve() has removed any '..'
      const type = TYPES[extname(file)];
      if (!inside || !type || !existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(await readFile(file));
    } catch (error) {
      res.writeHead(500).end(String(error));
    }
  });
  return new Promise((ready) => {
    server.listen(0, '127.0.0.1', () => ready({ server, requests, origin: `http://127.0.0.1:${server.address().port}` }));
  });
}

test('chromium: bridge workload on the unbundled browser build', { timeout: 50_000 }, async (t) => {
  // CI installs the browser; a missing one must fail loudly rather than skip.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: install it with \`apt-get install chromium\``);

  const { server, requests, origin } = await startServer();
  const profile = await mkdtemp(join(tmpdir(), 'agent-tools-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = context.pages()[0] ?? (await context.newPage());

    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.stack ?? error}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()} (${message.location().url})`);
    });
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));

    await page.goto(`${origin}/?seed=${SEED}`);
    const result = await page.evaluate(() => globalThis.workload);
    assert.ok(result, `the page did not start the workload:\n${problems.join('\n')}`);
    if (result.error) assert.fail(`in the page: ${result.error}`);

    t.diagnostic(`chromium: first engine ${result.firstEngineMs.toFixed(1)} ms, 1000 ops ${result.ms.toFixed(1)} ms`);
    assert.deepEqual(problems, [], 'page errors, console errors or failed requests');
    assert.deepEqual(result.packageViolations, [], 'CSP violations while loading and running the package');
    assert.equal(result.codeGenerationBlocked, true, 'the CSP should reject eval and new Function');
    assert.deepEqual(result.mismatches, []);
    assert.equal(result.count, 1000);
    assert.equal(result.failedAsExpected, 100);
    assert.equal(result.liveOperations, 0);
    // The browser loader fetched the .wasm itself, once, from its place beside the package.
    assert.equal(requests.filter((path) => path.endsWith('.wasm')).join(), '/js/dist/agent_tools.wasm');
  } finally {
    await context?.close();
    await new Promise((done) => server.close(done));
    await rm(profile, { recursive: true, force: true });
  }
});
