// The driver's churn-free tables (js/src/tables.js): ids, staleness, limits and sweeping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReusedKeyMap, SlotTable } from '#internal/tables.js';
import { AgentToolsError } from '#internal/errors.js'; // the same module instance as tables.js

test('SlotTable: ids are unique among live values, non-zero uint32, and stale once removed', () => {
  const table = new SlotTable();
  const a = { name: 'a' };
  const b = { name: 'b' };
  const idA = table.add(a);
  const idB = table.add(b);
  assert.notEqual(idA, idB);
  for (const id of [idA, idB]) assert.ok(Number.isInteger(id) && id > 0 && id <= 0xffffffff);
  assert.equal(a.id, idA);
  assert.equal(table.get(idA), a);
  assert.equal(table.size, 2);

  assert.equal(table.remove(idA), a);
  assert.equal(table.remove(idA), undefined, 'removed once only');
  assert.equal(table.get(idA), undefined);

  // The freed slot is reused under a new id: the old id still finds nothing.
  const c = { name: 'c' };
  const idC = table.add(c);
  assert.notEqual(idC, idA);
  assert.equal(idC & 0xfffff, idA & 0xfffff, 'same slot');
  assert.equal(table.get(idA), undefined);
  assert.equal(table.remove(idA), undefined);
  assert.equal(table.get(idC), c);
  assert.deepEqual(table.ids().sort(), [idB, idC].sort());
  assert.equal(table.get(0), undefined);
  assert.equal(table.get(0xffffffff), undefined);
});

test('SlotTable: a slot reused many times keeps minting new ids, wrapping its generation', () => {
  const table = new SlotTable();
  const seen = new Set();
  for (let i = 0; i < 5000; i++) {
    const id = table.add({});
    assert.ok(id > 0 && id <= 0xffffffff);
    seen.add(id);
    table.remove(id);
  }
  assert.equal(seen.size, 4095, 'each of the 4095 generations once, then the first again');
  assert.equal(table.size, 0);
});

test('SlotTable: more than 2^20 values in flight is a typed error, and the table still works', () => {
  const table = new SlotTable();
  const ids = [];
  for (let i = 0; i < 1 << 20; i++) ids.push(table.add({}));
  assert.throws(() => table.add({}), (e) => e instanceof AgentToolsError && e.code === 'INPUT_TOO_LARGE');
  table.remove(ids[12345]);
  const again = table.add({});
  assert.equal(again & 0xfffff, 12345);
  assert.equal(table.size, 1 << 20);
});

test('ReusedKeyMap: clear keeps a reused key cheap and sweeps keys that do not come back', () => {
  const map = new ReusedKeyMap();
  map.set('k', 1);
  map.clear('k');
  assert.equal(map.get('k'), undefined);
  assert.equal(map.size, 0);
  map.set('k', 2);
  assert.equal(map.get('k'), 2);
  assert.equal(map.size, 1);
  map.clear('missing'); // nothing to clear
  assert.equal(map.size, 1);

  // 10,000 distinct keys, each set and cleared once: no more than a bounded number stay behind.
  for (let i = 0; i < 10_000; i++) {
    map.set(`key-${i}`, { i });
    map.clear(`key-${i}`);
  }
  assert.equal(map.size, 1);
  assert.equal(map.get('k'), 2, 'the live entry survives every sweep');
  assert.equal(map.get('key-9999'), undefined);
});
