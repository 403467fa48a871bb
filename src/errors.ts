/**
 * The one error type users see: a message that says what was wrong and, where we know it, where
 * (file:line:col) and what to do. The CLI and the action print it without a stack trace.
 */
export class UserError extends Error {
  readonly hint?: string;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UserError';
    this.hint = options?.hint;
  }
}

/** Formats any error for a user: the message, then the hint on its own line. */
export function describeError(err: unknown): string {
  if (err instanceof UserError) return err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
