// The worker under test. Its top level only imports: workerd forbids timers, randomness and I/O
// at global scope, so the engine is created lazily, inside the first request that needs it.
import { probe } from './global-scope-probe.js';
import { getDefaultEngine } from '@growthub/agent-tools/runtime';
import { bridgeBurst } from '../workload.js';

// performance.now() only advances across I/O in workerd; the test also times each round trip.
const now = () => performance.now();

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

export default {
  async fetch(request) {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/engine') {
        const instantiationsBefore = probe.instantiations;
        const started = now();
        const engine = await getDefaultEngine();
        const ms = now() - started;
        return json({ ms, instantiationsBefore, instantiationsAfter: probe.instantiations, stats: engine.stats() });
      }
      if (url.pathname === '/burst') {
        const engine = await getDefaultEngine();
        const seed = Number(url.searchParams.get('seed') ?? 1);
        const result = await bridgeBurst(engine, { count: Number(url.searchParams.get('count') ?? 1000), seed });
        return json({ ...result, stats: engine.stats() });
      }
      return json({ error: `no route ${url.pathname}` }, 404);
    } catch (error) {
      // Surface the failure to the test instead of workerd's generic 500 page.
      return json({ error: String(error?.stack ?? error), code: error?.code }, 500);
    }
  },
};
