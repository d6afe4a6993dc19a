// A full garbage collection on demand, even in a process started without --expose-gc. Shared by
// the bench and the fixture process it starts (bench/kv.mjs).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const collectGarbage = globalThis.gc ?? (setFlagsFromString('--expose-gc'), runInNewContext('gc'));
