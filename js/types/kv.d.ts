export { DEFAULT_LOCK_TTL_SECONDS } from './constants.js';
