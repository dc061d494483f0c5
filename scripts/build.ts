// Bundles berth into one ESM file, dist/cli/main.mjs, with esbuild: the daemon then starts without
// Node's TypeScript stripper (its WebAssembly module alone is ~25 MiB of external memory) and without
// resolving ~200 module files at start-up. bin/berth runs the bundle when it is newer than every source
// file, and src/cli/main.ts otherwise, so a stale bundle never runs.
//
//   node scripts/build.ts            build (a few hundred ms)
//   node scripts/build.ts --check    exit 1 when the bundle is missing or older than the sources
//   node scripts/build.ts --outfile F  build into F instead (tests)
//
// The bundle sits at dist/cli/ so that main.ts's `new URL('../../package.json', import.meta.url)`
// still finds package.json at the repository's root.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outArg = process.argv.indexOf('--outfile');
const out = outArg > 0 && process.argv[outArg + 1] ? path.resolve(process.argv[outArg + 1]!) : path.join(repo, 'dist/cli/main.mjs');

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export function isBundleFresh(): boolean {
  try {
    const built = statSync(out).mtimeMs;
    return built >= newestSource(path.join(repo, 'src')) && built >= statSync(path.join(repo, 'package-lock.json')).mtimeMs;
  } catch {
    return false;
  }
}

if (process.argv.includes('--check')) process.exit(isBundleFresh() ? 0 : 1);

const t0 = performance.now();
const result = await build({
  entryPoints: [path.join(repo, 'src/cli/main.ts')],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  sourcemap: 'linked',
  // V8 keeps the whole source text resident: whitespace and syntax minification halve it; identifiers are kept,
  // so stack traces still name berth's functions (the linked source map gives file and line).
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
    // CommonJS dependencies call require() on Node's built-ins and read __dirname: give the ESM bundle both.
  banner: {
    js: [
      "import { createRequire as __berthRequire } from 'node:module';",
      "import { fileURLToPath as __berthPath } from 'node:url';",
      'const require = __berthRequire(import.meta.url);',
      'const __filename = __berthPath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join(' '),
  },
  // dockerode's ssh:// transport (ssh2, with optional native add-ons) is never used by berth, which talks
  // to the Docker socket: a stub keeps ~1 MiB of code and its start-up cost out of the daemon.
  plugins: [
    {
      name: 'no-ssh2',
      setup(b) {
        b.onResolve({ filter: /^ssh2$/ }, () => ({ path: 'ssh2', namespace: 'berth-stub' }));
        b.onLoad({ filter: /.*/, namespace: 'berth-stub' }, () => ({
          contents: "export class Client { constructor() { throw new Error('berth talks to Docker over its socket; ssh:// Docker hosts are not supported'); } }",
          loader: 'js',
        }));
      },
    },
  ],
  external: ['cpu-features', '*.node'],
  logLevel: 'warning',
  metafile: true,
});
// Non-TypeScript assets the bundle opens at run time, next to it: the nftables mode's netlink helper (a python3
// script, found by src/proxy/nftables/netlink/transport.ts next to the module that runs it).
const ASSETS = ['src/proxy/nftables/netlink/nfnl-helper.py'];
mkdirSync(path.dirname(out), { recursive: true });
for (const a of ASSETS) copyFileSync(path.join(repo, a), path.join(path.dirname(out), path.basename(a)));
const bytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
console.log(`built ${path.relative(repo, out)} (${(bytes / 1048576).toFixed(1)} MiB with its source map) in ${Math.round(performance.now() - t0)} ms`);
