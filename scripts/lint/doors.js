// ESLint rule: a folder's index.ts is its only door. A file may import another file directly only
// when that file's folder contains the importer (its own folder, or a folder it sits under);
// anything else must go through the target folder's index.ts. Files at the top of src/ (errors.ts,
// limit.ts) belong to no folder and are open to all.
import { dirname, relative, resolve, sep } from 'node:path';

const inside = (dir, file) => !relative(dir, file).startsWith('..');

export default {
  meta: {
    type: 'problem',
    docs: { description: "import another folder's files only through its index.ts" },
    messages: { door: "'{{source}}' reaches into {{folder}}/: import its index.ts instead (the folder's only door)" },
    schema: [{ type: 'object', properties: { root: { type: 'string' } }, additionalProperties: false }],
  },
  create(context) {
    const root = resolve(context.cwd, context.options[0]?.root ?? 'src');
    const importer = context.filename;
    const check = (node) => {
      const source = node.source?.value;
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = resolve(dirname(importer), source);
      const folder = dirname(target);
      if (folder === root || !inside(root, target)) return;
      if (inside(folder, importer)) return;
      if (target.endsWith(`${sep}index.ts`)) return;
      context.report({ node: node.source, messageId: 'door', data: { source, folder: relative(root, folder) } });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};
