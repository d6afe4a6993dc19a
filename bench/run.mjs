// One command for every benchmark: prints a table per suite and writes bench/results/<suite>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchBridge } from './bridge.mjs';
import { benchKv } from './kv.mjs';
import { benchTasks } from './tasks.mjs';

const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
mkdirSync(out, { recursive: true });
const suites = { bridge: benchBridge, kv: benchKv, tasks: benchTasks };
const only = process.argv[2];
for (const [name, bench] of Object.entries(suites)) {
  if (only && only !== name) continue;
  console.log(`\n## ${name}`);
  const rows = await bench();
  console.table(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toFixed(2)) : v]))));
  const file = join(out, `${name}.json`);
  writeFileSync(file, JSON.stringify({ suite: name, node: process.version, date: new Date().toISOString(), rows }, null, 2));
  console.log(`wrote ${file}`);
}
