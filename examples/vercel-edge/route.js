// A Vercel Edge function (e.g. app/api/bridge/route.js in Next.js). The bundler picks the
// package's `edge-light` condition, whose loader imports the .wasm with `?module`.
import { getDefaultEngine } from '@growthub/agent-tools/runtime';

export const runtime = 'edge';

export async function GET() {
  const engine = await getDefaultEngine();
  return Response.json(await engine.run('diag.echo', { tag: 'edge', calls: [{ kind: 'now' }] }));
}
