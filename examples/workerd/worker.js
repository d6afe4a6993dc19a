// A Cloudflare Worker using the package. Wrangler resolves the package's `workerd` condition and
// imports the .wasm as a compiled module (see wrangler.toml). Nothing runs at import time: the
// engine is created inside the first request, as Workers require.
import { getDefaultEngine } from '@growthub/agent-tools/runtime';

export default {
  async fetch(request) {
    const engine = await getDefaultEngine();
    const value = await engine.run('diag.echo', { tag: new URL(request.url).pathname, calls: [{ kind: 'now' }] });
    return Response.json(value);
  },
};
