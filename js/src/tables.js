// Tables for the driver's hot paths, where entries come and go with every operation.
//
// Why not a Map: a Map that gains and loses entries all the time rehashes its table every few
// dozen changes, and V8 links each obsolete table to its successor (for iterators still walking
// it). Once one table of that chain is in the old generation, the scavenger treats it as live, so
// every later table and every value it names (an operation's promise, closures, result) survives
// the scavenges that should free it and is promoted. In the lock benchmark that promoted ~1 MB per
// scavenge instead of ~60 KB, and the GC took about a quarter of the client's CPU per lock cycle.
// Neither table below ever deletes a Map entry in steady state.
import { AgentToolsError } from './errors.js';
import { ErrorCode } from './generated/constants.js';

const SLOT_BITS = 20;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const MAX_GENERATION = 0xfff;

/**
 * Values under ids the table assigns: an array of slots and a free list. An id is
 * generation · 2^20 + slot, so a slot's next value gets a new id and a stale id finds nothing
 * (until a slot has been reused 4095 times). Ids are never 0 and fit a uint32. Each value is an
 * object; the table records its id as `value.id`.
 */
export class SlotTable {
  #slots = []; // slot -> value, or undefined when free
  #generations = []; // slot -> generation of its current or last id
  #free = []; // free slots, reused last-in first-out (a warm slot stays in cache)
  #size = 0;

  get size() {
    return this.#size;
  }

  /** Stores `value` under a new id, sets value.id to it and returns it. */
  add(value) {
    let slot = this.#free.pop();
    if (slot === undefined) {
      slot = this.#slots.length;
      if (slot > SLOT_MASK) {
        throw new AgentToolsError(ErrorCode.INPUT_TOO_LARGE, `more than ${SLOT_MASK + 1} operations in flight on one engine`);
      }
      this.#slots.push(undefined);
      this.#generations.push(0);
    }
    const generation = this.#generations[slot] >= MAX_GENERATION ? 1 : this.#generations[slot] + 1;
    this.#generations[slot] = generation;
    value.id = generation * (SLOT_MASK + 1) + slot;
    this.#slots[slot] = value;
    this.#size++;
    return value.id;
  }

  get(id) {
    const value = this.#slots[id & SLOT_MASK];
    return value !== undefined && value.id === id ? value : undefined;
  }

  /** Removes and returns the value with this id (undefined if there is none). */
  remove(id) {
    const slot = id & SLOT_MASK;
    const value = this.#slots[slot];
    if (value === undefined || value.id !== id) return undefined;
    this.#slots[slot] = undefined;
    this.#free.push(slot);
    this.#size--;
    return value;
  }

  ids() {
    const ids = [];
    for (const value of this.#slots) if (value !== undefined) ids.push(value.id);
    return ids;
  }
}

/**
 * A Map for keys that come back (a lock key is taken and released over and over): clearing a key
 * leaves its entry in place, undefined, so using the key again costs no rehash. Cleared keys are
 * swept out, into a new Map, once they outnumber the live ones, so keys that never come back do
 * not accumulate.
 */
export class ReusedKeyMap {
  #map = new Map();
  #cleared = 0; // entries whose value is undefined

  /** Live entries. */
  get size() {
    return this.#map.size - this.#cleared;
  }

  get(key) {
    return this.#map.get(key);
  }

  /** `value` must not be undefined. */
  set(key, value) {
    if (this.#cleared > 0 && this.#map.get(key) === undefined && this.#map.has(key)) this.#cleared--;
    this.#map.set(key, value);
  }

  clear(key) {
    if (this.#map.get(key) === undefined) return;
    this.#map.set(key, undefined);
    if (++this.#cleared > 64 && this.#cleared * 2 > this.#map.size) {
      const live = new Map();
      for (const [k, v] of this.#map) if (v !== undefined) live.set(k, v);
      this.#map = live;
      this.#cleared = 0;
    }
  }
}
