// Dockerfile frontend benchmark: parse + plan + evaluate a generated 10,000-line Dockerfile, and
// walk a generated 100,000-file build context with a 50-pattern .dockerignore (peer: `find | wc -l`,
// which walks without matching). Everything is generated under os.tmpdir() and removed afterwards.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planBuild, StageEvaluator, PatternMatcher, parseDockerignore, walkContext } from '../src/dockerfile/index.ts';
import { printTable, time, timeShell } from './report.ts';

function generateDockerfile(lines: number): string {
  const out: string[] = ['# syntax=docker/dockerfile:1', 'ARG BASE=alpine:3.20', 'ARG VERSION=1.0'];
  let stage = 0;
  while (out.length < lines) {
    out.push(`# s${stage} is stage number ${stage}`, `FROM --platform=$BUILDPLATFORM \${BASE} AS s${stage}`, 'ARG VERSION', 'ENV APP_HOME=/app PATH=/app/bin:$PATH');
    for (let i = 0; i < 40 && out.length < lines; i++) {
      switch (i % 8) {
        case 0: out.push(`RUN --mount=type=cache,target=/root/.cache echo step ${i} \\`, '  && echo "more $VERSION" \\', '  && true'); break;
        case 1: out.push(`COPY --chown=1000:1000 --chmod=644 src/file${i}.txt \${APP_HOME}/file${i}.txt`); break;
        case 2: out.push(`LABEL org.example.step${i}="value ${i}" other=\${VERSION%%.*}`); break;
        case 3: out.push('RUN <<EOF', `echo heredoc ${i}`, 'echo $APP_HOME', 'EOF'); break;
        case 4: out.push(`WORKDIR \${APP_HOME}/w${i}`); break;
        case 5: out.push(`ENV STEP_${i}=\${VERSION:-0}-${i}`); break;
        case 6: out.push(stage > 0 ? `COPY --from=s${stage - 1} /app/file1.txt /prev/` : 'USER 1000:1000'); break;
        default: out.push('EXPOSE 8080/tcp 9090', `RUN ["/bin/sh", "-c", "echo exec ${i}"]`);
      }
    }
    stage++;
  }
  return out.slice(0, lines).join('\n') + '\n';
}

function generateContext(root: string, files: number): void {
  // 100 top-level dirs × 10 subdirs × 100 files (with some node_modules/.git/build trees to prune).
  const top = ['src', 'lib', 'test', 'docs', 'node_modules', '.git', 'build', 'dist', 'assets', 'vendor'];
  let n = 0;
  for (let a = 0; n < files; a++) {
    const d1 = join(root, `${top[a % top.length]}${Math.floor(a / top.length)}`);
    for (let b = 0; b < 10 && n < files; b++) {
      const d2 = join(d1, `pkg${b}`);
      mkdirSync(d2, { recursive: true });
      for (let c = 0; c < 100 && n < files; c++, n++) {
        const ext = ['.ts', '.js', '.md', '.log', '.tmp', '.go', '.json', '.txt', '.o', '.png'][c % 10];
        writeFileSync(join(d2, `f${c}${ext}`), '');
      }
    }
  }
}

const ignore50 = [
  '# generated: 50 patterns', 'node_modules*', '.git*', '**/*.log', '**/*.tmp', 'build*', '!build0/pkg0/f0.ts', 'dist*/**', '*.md', '!README.md',
  '**/*.o', 'vendor*/pkg[0-4]', 'docs*/pkg?/f1*.png', 'assets*/**/*.png', '!assets0/pkg0/f9.png', '**/.DS_Store', '**/Thumbs.db', 'coverage', '.nyc_output',
  '**/*.swp', 'tmp', 'temp', '*/temp*', '*/*/temp*', 'temp?', '**/__pycache__', '**/*.pyc', '.env', '.env.*', '!.env.example', 'secrets',
  '**/*.pem', '**/*.key', 'Dockerfile*', '.dockerignore', 'docker-compose*.yml', '.github', '.gitlab-ci.yml', '.vscode', '.idea', '*.iml',
  'test*/pkg9', 'lib*/pkg8/**/*.json', 'src*/pkg7/f5*', '!src0/pkg7/f55.go', 'out', 'target', '**/.cache', 'logs', 'npm-debug.log*', 'yarn-error.log',
];

export default async function bench(): Promise<void> {
  const text = generateDockerfile(10_000);
  const amd64 = { os: 'linux', architecture: 'amd64' };
  const parse = await time(() => {
    const plan = planBuild({ dockerfile: text, targetPlatform: amd64, buildPlatform: amd64 });
    let steps = 0;
    for (const s of plan.allStages) {
      const ev = new StageEvaluator(plan, s, { env: ['PATH=/usr/bin:/bin'] });
      for (const i of s.instructions) { ev.step(i); steps++; }
    }
    return { stages: plan.allStages.length, steps };
  });
  printTable('Dockerfile: parse + plan + evaluate 10,000 lines', [
    { name: 'slipway planBuild + StageEvaluator', seconds: parse.seconds, bytes: text.length, note: `${parse.value.stages} stages, ${parse.value.steps} instructions` },
  ]);

  const root = mkdtempSync(join(tmpdir(), 'slipway-bench-ctx-'));
  try {
    generateContext(root, 100_000);
    const patterns = parseDockerignore(ignore50.join('\n'));
    const matcher = new PatternMatcher(patterns);
    const walk = await time(() => walkContext(root, matcher));
    const all = await time(() => walkContext(root));
    const find = timeShell(`find ${root} | wc -l`);
    printTable(`Context walk: 100,000 files, ${patterns.length}-pattern .dockerignore`, [
      { name: 'slipway walkContext (50 patterns)', seconds: walk.seconds, note: `${walk.value.length} entries kept` },
      { name: 'slipway walkContext (no patterns)', seconds: all.seconds, note: `${all.value.length} entries` },
      { name: 'find DIR | wc -l', seconds: find },
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
