// Tables for the driver's hot paths, where entries come and go with every operation.
//
// Not a Map: one that gains and loses entries all the time rehashes every few dozen changes, and
// V8 links each obsolete table to its successor (for live iterators). Once a table of that chain is
// promoted, every later table and every value it names (an operation's promise and closures)
// survives the scavenges that should free it. In the lock benchmark that promoted ~1 MB per
// scavenge instead of ~60 KB, and a lock cycle cost the client about a fifth more CPU.
import { AgentToolsError } from './errors.js';
import { ErrorCode } from './generated/constants.js';

const SLOT_BITS = 20;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const MAX_GENERATION = 0xfff;

/**
 * Objects under ids the table assigns (recorded as `value.id`): slots and a free list. An id is
 * generation · 2^20 + slot, so a stale id finds nothing until its slot is reused 4095 times. Ids
 * are never 0 and fit a uint32.
 */
export class SlotTable {
  #slots = []; // slot -> value, or undefined when free
  #generations = []; // slot -> generation of its current or last id
  #free = []; // free slots, last in first out

  get size() {
    return this.#slots.length - this.#free.length;
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
    return value;
  }

  ids() {
    const ids = [];
    for (const value of this.#slots) if (value !== undefined) ids.push(value.id);
    return ids;
  }
}

/**
 * A Map for keys that come back (a lock key, taken and released over and over): clearing a key
 * leaves its entry, undefined, so reusing it costs no rehash. Cleared keys are swept into a new Map
 * once they outnumber the live ones.
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
