// Imported first by the worker, so it is evaluated before the package: it counts wasm
// instantiations so the worker can report that importing the package instantiated nothing.
// (Timers, randomness and I/O need no probe: workerd itself throws if the package tried them at
// global scope, and the worker would then fail to start.)
const instantiate = WebAssembly.instantiate;
export const probe = { instantiations: 0 };
WebAssembly.instantiate = function (...args) {
  probe.instantiations++;
  return instantiate.apply(this, args);
};
