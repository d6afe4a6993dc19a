// The REST stores' HTTP transport on Node: node:http / node:https with keep-alive agents (the
// package's imports map picks this file under the `node` condition, http-fetch.js elsewhere).
//
// Why not fetch: Node's fetch (undici behind WHATWG streams and Request/Response/Headers objects)
// costs about four times the CPU of node:http per request: 430 against 110 µs for a 64-command
// pipeline (13 KB) on loopback, which at 64 concurrent locks is ~10 µs of a ~110 µs cycle.
// The wire and the contract are those of http-fetch.js: POST, no redirect ever followed, the body
// read whole as UTF-8 (bad bytes → U+FFFD), rejected on a network error, a connection closed
// before the end of the body, or when `signal` aborts.
import http from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';

// Shared by every store in the process, like fetch's global dispatcher. The agents unref idle
// sockets, so a kept-alive connection never keeps the process running.
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

function abortError() {
  return Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
}

export function defaultTransport() {
  // Request options per URL, parsed once: a store posts to two URLs.
  const targets = new Map();
  const targetOf = (url) => {
    let target = targets.get(url);
    if (!target) {
      const options = urlToHttpOptions(new URL(url)); // http: or https: (the store checks)
      const client = options.protocol === 'https:' ? https : http;
      target = { client, options: { ...options, method: 'POST', agent: agents[options.protocol] } };
      targets.set(url, target);
    }
    return target;
  };

  return {
    name: 'node:http',
    post(url, headers, body, signal) {
      return new Promise((resolve, reject) => {
        if (signal?.aborted) {
          reject(abortError());
          return;
        }
        const { client, options } = targetOf(url);
        let settled = false;
        const settle = (error, value) => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(value);
        };
        // Node sets Content-Length from the body given to end(). node:http does not decompress,
        // so the body is asked for as it is (without the header any coding would be acceptable).
        const request = client.request({ ...options, headers: { ...headers, 'Accept-Encoding': 'identity' } }, (response) => {
          response.setEncoding('utf8');
          let text = '';
          response.on('data', (chunk) => { text += chunk; });
          response.on('end', () => settle(null, {
            status: response.statusCode,
            text,
            header: (name) => {
              const value = response.headers[name];
              return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
            },
          }));
          response.on('error', (error) => settle(error));
          response.on('close', () => {
            if (!response.complete) settle(new Error('the connection closed before the response ended'));
          });
        });
        function onAbort() {
          settle(abortError());
          request.destroy();
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        request.on('error', (error) => settle(error));
        request.end(body);
      });
    },
  };
}
