import type { ErrorCode } from './constants.js';

/** The one error class of the package; `code` is stable and shared with the C++ core. */
export declare class AgentToolsError extends Error {
  constructor(code: ErrorCode, message: string, options?: { details?: unknown; cause?: unknown });
  readonly name: 'AgentToolsError';
  readonly code: ErrorCode;
  readonly details?: unknown;
}
