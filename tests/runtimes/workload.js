// The bridge workload shared by every runtime test and benchmark: `count` concurrent operations on
// one engine, each making three host calls whose replies come back in a random order -- some
// synchronously, some from a microtask, some after a timer -- and one in ten failing on purpose.
// Every reply is derived from its request, so a reply delivered to the wrong coroutine shows up as
// a mismatch. Runs unchanged in Node, workerd, edge-runtime and browsers (no Node APIs).

function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

function later(random, value, fail) {
  const mode = Math.floor(random() * 3);
  const settle = () => {
    if (fail) throw new Error(fail);
    return value;
  };
  if (mode === 0) return settle(); // synchronous
  if (mode === 1) return Promise.resolve().then(settle); // microtask
  return new Promise((resolve, reject) => {
    setTimeout(() => {
      try { resolve(settle()); } catch (e) { reject(e); }
    }, Math.floor(random() * 4));
  });
}

/**
 * @param engine an AgentEngine
 * @param options.count operations to start at once
 * @param options.seed  seeds the reply order
 * @returns {{count:number, ms:number, failedAsExpected:number, mismatches:string[]}}
 */
export async function bridgeBurst(engine, { count = 1000, seed = 1 } = {}) {
  const random = prng(seed);
  const host = {
    kv(args) {
      const [command, key] = args;
      const i = Number(key.slice(4));
      const fail = i % 10 === 7 && command === 'INCR' ? `kv refused ${key}` : null;
      return later(random, command === 'GET' ? `value-of-${key}` : i * 2, fail);
    },
    now() {
      return later(random, 1_700_000_000_000, null);
    },
  };
  const started = (typeof performance !== 'undefined' ? performance : Date).now();
  const runs = [];
  for (let i = 0; i < count; i++) {
    const key = `key-${i}`;
    const input = {
      tag: i,
      calls: [{ kind: 'kv', args: ['GET', key] }, { kind: 'now' }, { kind: 'kv', args: ['INCR', key] }],
    };
    runs.push(engine.run('diag.echo', input, { host }).then(
      (value) => ({ i, value }),
      (error) => ({ i, error }),
    ));
  }
  const outcomes = await Promise.all(runs);
  const ms = (typeof performance !== 'undefined' ? performance : Date).now() - started;
  const mismatches = [];
  let failedAsExpected = 0;
  for (const { i, value, error } of outcomes) {
    if (i % 10 === 7) {
      if (error?.code === 'HOST_ERROR' && error.message.includes(`kv refused key-${i}`)) failedAsExpected++;
      else mismatches.push(`op ${i}: expected HOST_ERROR, got ${JSON.stringify(value ?? error?.message)}`);
      continue;
    }
    const expected = JSON.stringify({ tag: i, results: [`value-of-key-${i}`, 1_700_000_000_000, i * 2] });
    const actual = error ? `error ${error.code}: ${error.message}` : JSON.stringify(value);
    if (actual !== expected) mismatches.push(`op ${i}: expected ${expected}, got ${actual}`);
  }
  return { count, ms, failedAsExpected, mismatches };
}

/**
 * True when this realm refuses code generation from strings (eval and new Function both throw
 * EvalError): a runtime test that passes with this true proves the package used neither.
 */
export function codeGenerationBlocked() {
  const attempts = [() => (0, eval)('1'), () => new Function('return 1')()];
  return attempts.every((attempt) => {
    try {
      attempt();
      return false;
    } catch (error) {
      return error instanceof EvalError;
    }
  });
}
