import { ErrorCode } from './generated/constants.js';

const knownCodes = new Set(Object.values(ErrorCode));

/**
 * The one error class of the package. `code` is a stable string from `ErrorCode` (shared with the
 * C++ core); `details` carries structured data where a code has some. Messages never contain
 * credentials.
 */
export class AgentToolsError extends Error {
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentToolsError';
    this.code = knownCodes.has(code) ? code : ErrorCode.INTERNAL;
    if (options.details !== undefined) this.details = options.details;
  }
}

/** Rebuilds the error the core reported as {code, message, details?}. */
export function errorFromCore(error) {
  return new AgentToolsError(error.code, error.message, { details: error.details });
}

/**
 * How a failed host function is described to the core: its own code when it threw an
 * AgentToolsError (a TIMEOUT stays a TIMEOUT), otherwise HOST_ERROR with the message only.
 */
export function describeHostFailure(failure) {
  if (failure instanceof AgentToolsError) {
    return { code: failure.code, message: failure.message };
  }
  const message = failure instanceof Error ? `${failure.name}: ${failure.message}` : `host function failed with ${typeof failure} ${safeText(failure)}`;
  return { code: ErrorCode.HOST_ERROR, message };
}

function safeText(value) {
  try {
    return String(value).slice(0, 200);
  } catch {
    return '(unprintable)';
  }
}
