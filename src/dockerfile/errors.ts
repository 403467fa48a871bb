// The Dockerfile error: a UserError that names the file, line and column, shows the offending
// text, and says what to do.
import { UserError } from '../errors.ts';

export interface SourceRange {
  /** 1-based first and last line of the instruction (continuations and heredocs included). */
  startLine: number;
  endLine: number;
  /** 1-based column where the instruction starts on startLine. */
  column: number;
}

export class DockerfileError extends UserError {
  readonly file: string;
  readonly range: SourceRange;
  readonly text: string;
  readonly reason: string;
  constructor(file: string, range: SourceRange, reason: string, text: string, hint?: string) {
    const shown = text.length > 200 ? text.slice(0, 200) + '…' : text;
    super(`${file}:${range.startLine}:${range.column}: ${reason}${shown ? `\n  ${range.startLine} | ${shown.split('\n')[0]}` : ''}`, { hint });
    this.name = 'DockerfileError';
    this.file = file;
    this.range = range;
    this.text = text;
    this.reason = reason;
  }
}

/** Re-throws a location-less UserError (e.g. from the lexer) with the instruction's location. */
export function withLocation(err: unknown, file: string, range: SourceRange, text: string): never {
  if (err instanceof DockerfileError) throw err;
  if (err instanceof UserError) throw new DockerfileError(file, range, err.message, text, err.hint);
  throw err;
}
