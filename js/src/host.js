// The host functions the core calls, as this runtime provides them by default. KV and HTTP come
// from adapters chosen by the caller; the clock and randomness are the platform's own, read only
// when the core asks (never at import time: workerd forbids that at global scope). Sleeps are
// timers the driver keeps itself (engine.js), so it can clear them when the core aborts a call.
import { AgentToolsError } from './errors.js';
import { ErrorCode } from './generated/constants.js';

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export const platformHost = Object.freeze({
  now: () => Date.now(),

  random({ bytes }) {
    const buffer = new Uint8Array(bytes);
    globalThis.crypto.getRandomValues(buffer);
    let out = '';
    for (const b of buffer) out += hex[b];
    return out;
  },

  kv() {
    throw new AgentToolsError(ErrorCode.HOST_ERROR, 'no KV store is configured for this operation');
  },

  http() {
    throw new AgentToolsError(ErrorCode.HOST_ERROR, 'no HTTP transport is configured for this operation');
  },
});
