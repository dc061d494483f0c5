// Issue #9 item 9: no shell command is ever built from pod data. The scanner (helpers/shell-scan.ts) is first shown
// to catch each way a shell string can be run, then run over every file under src/: argument arrays only.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { countChildProcessCalls, scanSource } from './helpers/shell-scan.ts';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const sources = (readdirSync(SRC, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
  .filter((d) => d.isFile() && /\.(ts|tsx|mts|cts|js|mjs)$/.test(d.name))
  .map((d) => path.join(d.parentPath, d.name));

const rulesOf = (text: string): string[] => scanSource('fixture.ts', text).map((f) => f.rule);

describe('the shell scanner catches each way a shell could run pod data', () => {
  const bad: [string, string][] = [
    ['exec with a string', "import { exec } from 'node:child_process';\nexec(`docker logs ${pod.name}`);"],
    ['execSync renamed', "import { execSync as run } from 'child_process';\nrun('ls ' + dir);"],
    ['namespace exec', "import * as cp from 'node:child_process';\ncp.exec(cmd);"],
    ['default import execSync', "import cp from 'node:child_process';\ncp.execSync(cmd);"],
    ['spawn with shell: true', "import { spawn } from 'node:child_process';\nspawn('mount', [src, dst], { shell: true });"],
    ['spawn with a shell option string', "import { spawn } from 'node:child_process';\nspawn('mount', [src], { 'shell': '/bin/sh' });"],
    ['spawn with shorthand shell', "import { spawn } from 'node:child_process';\nconst shell = true;\nspawn('x', [], { shell });"],
    ['spawn options we cannot see', "import { spawn } from 'node:child_process';\nspawn('mount', args, opts);"],
    ['spawn options spread', "import { spawn } from 'node:child_process';\nspawn('mount', args, { ...opts });"],
    ['execFile with a string of arguments', "import { execFile } from 'node:child_process';\nexecFile('mount', `-t tmpfs ${dst}`);"],
    ['spawn of a built command', "import { spawn } from 'node:child_process';\nspawn(`/usr/bin/${name}`, []);"],
    ['sh -c in an argument array', "import { spawn } from 'node:child_process';\nspawn('nsenter', ['-t', pid, 'sh', '-c', script]);"],
    ['bash -lc in a Docker Cmd', 'const cfg = { Cmd: ["/bin/bash", "-lc", `echo ${env}`] };'],
    ['a command line in a string', "const line = 'sh -c true';"],
    ['a command line in a template', 'const line = `bash -c ${cmd}`;'],
    ['require of child_process', "const cp = require('child_process');"],
    ['dynamic import of child_process', "const cp = await import('node:child_process');"],
    ['re-export of child_process', "export { exec } from 'node:child_process';"],
    ['allow-listed but with a variable script', "// berth-allow-shell: pause image build\nconst argv = ['sh', '-c', script];"],
  ];
  it.each(bad)('flags %s', (_what, text) => {
    expect(rulesOf(text).length).toBeGreaterThan(0);
  });

  const good: [string, string][] = [
    ['execFile with an argument array', "import { execFile } from 'node:child_process';\nexecFile(cmd, args, { timeout: 5, killSignal: 'SIGKILL' }, cb);"],
    ['spawn with argv and stdio', "import { spawn } from 'node:child_process';\nspawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });"],
    ['spawn with shell: false', "import { spawn } from 'node:child_process';\nspawn('x', ['-c', y], { shell: false });"],
    ['an allow-listed constant script', "// berth-allow-shell: fixed probe of the image's shell\nconst argv = ['sh', '-c', 'exit 0'];"],
    ['RegExp.exec is not child_process', 'const m = /x/.exec(s);'],
    ['a runtime exec of the pod\'s own argv', 'await runtime.exec(containerId, command, io);'],
    ['"-c" as a CLI flag', "const FLAGS = ['-c', '--container'];"],
  ];
  it.each(good)('passes %s', (_what, text) => {
    expect(scanSource('fixture.ts', text)).toEqual([]);
  });
});

describe('berth source: no shell command is built from pod data (argument arrays only)', () => {
  it('scans a real source tree that does start programs', () => {
    expect(sources.length).toBeGreaterThan(100);
    // mount(8), iptables-restore/conntrack/nft and the port-forward connector are started from src/: the scan sees them
    const calls = sources.reduce((n, f) => n + countChildProcessCalls(f, readFileSync(f, 'utf8')), 0);
    expect(calls).toBeGreaterThanOrEqual(3);
  });

  it('finds no exec/execSync, no shell: true, no built command and no unlisted sh -c anywhere under src/', () => {
    const findings = sources.flatMap((f) => scanSource(path.relative(SRC, f), readFileSync(f, 'utf8')));
    expect(findings).toEqual([]);
  });
});
