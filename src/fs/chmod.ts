// `--chmod` values: octal (as BuildKit has always taken) and symbolic (`u+x,go-w`, `a=rX`), the
// latter applied relative to each file's own mode as chmod(1) does.
import { UserError } from '../errors.ts';

export type ModeFn = (mode: number, isDir: boolean) => number;

export function parseChmod(spec: string): ModeFn {
  if (/^[0-7]+$/.test(spec)) {
    const m = parseInt(spec, 8);
    return () => m;
  }
  const clauses = spec.split(',');
  const parsed = clauses.map((c) => {
    const m = /^([ugoa]*)([+\-=])([rwxXst]*)$/.exec(c);
    if (!m) throw new UserError(`invalid --chmod value ${JSON.stringify(spec)}`, { hint: 'use an octal mode like 0755, or symbolic like u+x,go-w' });
    return { who: m[1] || 'a', op: m[2], perms: m[3] };
  });
  return (mode, isDir) => {
    let out = mode & 0o7777;
    for (const { who, op, perms } of parsed) {
      let bits = 0;
      const sel = (u: number, g: number, o: number): number => (who.includes('a') || who.includes('u') ? u : 0) | (who.includes('a') || who.includes('g') ? g : 0) | (who.includes('a') || who.includes('o') ? o : 0);
      for (const p of perms) {
        if (p === 'r') bits |= sel(0o400, 0o040, 0o004);
        if (p === 'w') bits |= sel(0o200, 0o020, 0o002);
        if (p === 'x' || (p === 'X' && (isDir || (mode & 0o111) !== 0))) bits |= sel(0o100, 0o010, 0o001);
        if (p === 's') bits |= sel(0o4000, 0o2000, 0);
        if (p === 't') bits |= 0o1000;
      }
      if (op === '+') out |= bits;
      else if (op === '-') out &= ~bits;
      else out = (out & ~sel(0o4700, 0o2070, 0o1007)) | bits;
    }
    return out;
  };
}
