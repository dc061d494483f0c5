// A source scanner for issue #9 item 9 ("no shell command is ever built from pod data"): parses TypeScript with the
// compiler's own parser and reports every place where a shell could run a string. The rules:
//  1. exec / execSync from child_process are forbidden outright (they always run `/bin/sh -c <string>`);
//  2. spawn / spawnSync / execFile / execFileSync / fork take an argument array (not a string, not a template with
//     substitutions), a command that is not built by concatenation or a template, and options that are an object
//     literal without `shell` (or with `shell: false`) - options we cannot see are a violation too;
//  3. child_process reached in a way this scanner cannot follow (require, dynamic import, re-export) is a violation;
//  4. an array literal that starts a shell with `-c` ('sh', '-c', …) must be allow-listed by a comment
//     `berth-allow-shell: <why>` on one of the two lines above it and its script must be a constant string;
//  5. a string literal holding `sh -c` / `bash -c` is a violation unless allow-listed the same way.
import ts from 'typescript';

export interface ShellFinding {
  file: string;
  line: number;
  rule: string;
  text: string;
}

const CHILD_PROCESS = new Set(['child_process', 'node:child_process']);
const FORBIDDEN = new Set(['exec', 'execSync']);
const ARGV_FNS = new Set(['spawn', 'spawnSync', 'execFile', 'execFileSync', 'fork']);
const SHELL_BIN = /^(?:\/(?:usr\/)?bin\/)?(?:ba|da|z|k|a)?sh$/;
const SHELL_FLAG = /^-[a-z]*c[a-z]*$/;
const SHELL_IN_STRING = /\b(?:ba|da|z|k)?sh\s+-[a-z]*c\b/;
export const ALLOW_MARK = 'berth-allow-shell:';

/** Every finding in one file's text (pure; `file` only names the findings). */
export function scanSource(file: string, text: string): ShellFinding[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const out: ShellFinding[] = [];
  const lines = text.split('\n');
  const add = (node: ts.Node, rule: string): void => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    out.push({ file, line, rule, text: node.getText(sf).slice(0, 160) });
  };
  const allowed = (node: ts.Node): boolean => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
    return [line, line - 1, line - 2].some((l) => l >= 0 && (lines[l] ?? '').includes(ALLOW_MARK));
  };

  // Local names bound to child_process functions, and namespace/default imports of the module.
  const fnNames = new Map<string, string>();
  const nsNames = new Set<string>();
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier) && CHILD_PROCESS.has(st.moduleSpecifier.text)) {
      const cl = st.importClause;
      if (cl?.name) nsNames.add(cl.name.text);
      const nb = cl?.namedBindings;
      if (nb && ts.isNamespaceImport(nb)) nsNames.add(nb.name.text);
      if (nb && ts.isNamedImports(nb))
        for (const el of nb.elements) {
          const imported = (el.propertyName ?? el.name).text;
          fnNames.set(el.name.text, imported);
          if (FORBIDDEN.has(imported)) add(el, `child_process.${imported} runs a shell string: use execFile/spawn with an argument array`);
        }
    }
    if (ts.isExportDeclaration(st) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier) && CHILD_PROCESS.has(st.moduleSpecifier.text))
      add(st, 'child_process re-exported: its callers cannot be checked');
  }

  const calleeOf = (call: ts.CallExpression): string | undefined => {
    const e = call.expression;
    if (ts.isIdentifier(e)) return fnNames.get(e.text);
    if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression) && nsNames.has(e.expression.text)) return e.name.text;
    return undefined;
  };
  const isBuiltString = (n: ts.Expression): boolean =>
    (ts.isTemplateExpression(n) && n.templateSpans.length > 0) || (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.PlusToken);
  const isStringy = (n: ts.Expression): boolean => ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateExpression(n) || isBuiltString(n);
  const checkOptions = (opt: ts.Expression | undefined, call: ts.CallExpression): void => {
    if (!opt) return;
    if (!ts.isObjectLiteralExpression(opt)) return add(call, 'child_process options are not an object literal: `shell` cannot be checked');
    for (const p of opt.properties) {
      if (ts.isSpreadAssignment(p)) add(p, 'child_process options spread another object: `shell` cannot be checked');
      else if (p.name && p.name.getText(sf).replace(/['"]/g, '') === 'shell') {
        const v = ts.isPropertyAssignment(p) ? p.initializer : undefined;
        if (!v || v.kind !== ts.SyntaxKind.FalseKeyword) add(p, 'child_process option `shell` is set: use an argument array without a shell');
      }
    }
  };

  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const fn = calleeOf(node);
      if (fn && FORBIDDEN.has(fn)) add(node, `child_process.${fn} runs a shell string: use execFile/spawn with an argument array`);
      else if (fn && ARGV_FNS.has(fn)) {
        const [cmd, args, opts, ...rest] = node.arguments;
        if (!cmd) add(node, `${fn} without a command`);
        else if (isBuiltString(cmd)) add(cmd, `${fn}: the command is built from a template or concatenation`);
        if (args && (isStringy(args) || ts.isObjectLiteralExpression(args))) {
          if (ts.isObjectLiteralExpression(args)) checkOptions(args, node);
          else add(args, `${fn}: the arguments are a string, not an array`);
        }
        checkOptions(opts, node);
        if (rest.length && fn !== 'execFile') add(node, `${fn}: unexpected extra arguments`);
      }
      // require('child_process') / import('child_process'): bindings this scanner cannot follow
      const a0 = node.arguments[0];
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      if ((isRequire || isImport) && a0 && ts.isStringLiteral(a0) && CHILD_PROCESS.has(a0.text)) add(node, 'child_process loaded dynamically: use a static import so the scan can follow it');
    }
    if (ts.isArrayLiteralExpression(node)) {
      const els = node.elements;
      for (let i = 0; i + 1 < els.length; i++) {
        const a = els[i]!;
        const b = els[i + 1]!;
        if (!(ts.isStringLiteral(a) || ts.isNoSubstitutionTemplateLiteral(a)) || !SHELL_BIN.test(a.text)) continue;
        if (!(ts.isStringLiteral(b) || ts.isNoSubstitutionTemplateLiteral(b)) || !SHELL_FLAG.test(b.text)) continue;
        const script = els[i + 2];
        if (!allowed(node)) add(node, `a shell with ${b.text} in an argument array: not allow-listed (${ALLOW_MARK} <why>)`);
        else if (!script || !(ts.isStringLiteral(script) || ts.isNoSubstitutionTemplateLiteral(script)))
          add(node, 'an allow-listed shell script must be a constant string');
      }
    }
    if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && SHELL_IN_STRING.test(node.text) && !allowed(node))
      add(node, `a string holding a shell command line: not allow-listed (${ALLOW_MARK} <why>)`);
    if (ts.isTemplateExpression(node) && SHELL_IN_STRING.test(node.getText(sf)) && !allowed(node)) add(node, 'a template building a shell command line');
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The call sites of child_process argv functions in one file (to prove the scan saw them). */
export function countChildProcessCalls(file: string, text: string): number {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const names = new Set<string>();
  for (const st of sf.statements)
    if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier) && CHILD_PROCESS.has(st.moduleSpecifier.text)) {
      const nb = st.importClause?.namedBindings;
      if (nb && ts.isNamedImports(nb)) for (const el of nb.elements) names.add(el.name.text);
    }
  let n = 0;
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && names.has(node.expression.text)) n++;
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return n;
}
