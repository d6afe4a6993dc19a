// The REST stores' HTTP transport over fetch: the default in workerd, Vercel Edge and browsers,
// and what a store given `fetch` uses on any runtime.
//
// A transport is `{ name, post(url, headers, body, signal) }`; `post` resolves with
// `{ status, text, header(lowerCaseName) }` once the whole body is read (as UTF-8, bad bytes →
// U+FFFD), and rejects on a network error or when `signal` aborts.

/** A transport over `fetchImpl`. */
export function fetchTransport(fetchImpl) {
  // Called as a plain function, never as a method of some object: runtimes reject a fetch invoked
  // with `this` set to anything but the global scope.
  return {
    name: 'fetch',
    async post(url, headers, body, signal) {
      // A redirect would carry the Authorization header to wherever it points; Upstash never
      // redirects, so a 3xx comes back as a status rather than being followed.
      const response = await fetchImpl(url, { method: 'POST', headers, body, signal, redirect: 'manual' });
      const text = await response.text();
      return { status: response.status, text, header: (name) => response.headers?.get?.(name) ?? null };
    },
  };
}

/** The runtime's own transport: the global fetch, looked up at each request. Null without one. */
export function defaultTransport() {
  if (typeof globalThis.fetch !== 'function') return null;
  return fetchTransport((url, init) => globalThis.fetch(url, init));
}
