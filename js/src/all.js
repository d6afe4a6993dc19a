// Every public name of every entry point: the input of the Node CommonJS bundle, which the Node
// ESM entries wrap so that `import` and `require` share one module instance.
export * from './index.js';
export * from './runtime.js';
export * from './adapters.js';
