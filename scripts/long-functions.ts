// Lists the functions in src/ (or the given folders and files) longer than a limit (default 60 lines), and with --undocumented the
// exported declarations without a JSDoc comment. A function whose body starts within its first
// 3 lines with a `//` comment saying why (`// long: …`) is listed as justified, not as a finding.
//
//   npx vite-node scripts/long-functions.ts [--limit 60] [--undocumented] [DIR|FILE …]   (default: src)
//
// Exit status: 0 nothing to report, 1 an unjustified long function or an undocumented export.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

interface Options {
  limit: number;
  undocumented: boolean;
  dirs: string[];
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { limit: 60, undocumented: false, dirs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--limit') opts.limit = Number(argv[++i]);
    else if (a === '--undocumented') opts.undocumented = true;
    else if (a !== '--') opts.dirs.push(a);
  }
  if (!(opts.limit > 0)) throw new Error('--limit needs a positive number of lines');
  if (opts.dirs.length === 0) opts.dirs.push('src');
  return opts;
}

function sourceFiles(dir: string): string[] {
  if (fs.statSync(dir).isFile()) return [dir];
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(c|m)?ts$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** A readable name for a function-like node: `Class.method`, `name`, or `(anonymous)`. */
function nameOf(node: ts.Node): string {
  const own = (n: ts.Node): string | undefined => {
    if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isGetAccessor(n) || ts.isSetAccessor(n)) && n.name) return n.name.getText();
    if (ts.isConstructorDeclaration(n)) return 'constructor';
    if ((ts.isArrowFunction(n) || ts.isFunctionExpression(n)) && ts.isVariableDeclaration(n.parent)) return n.parent.name.getText();
    if ((ts.isArrowFunction(n) || ts.isFunctionExpression(n)) && ts.isPropertyAssignment(n.parent)) return n.parent.name.getText();
    return undefined;
  };
  const cls = ts.findAncestor(node.parent, ts.isClassLike);
  const base = own(node) ?? '(anonymous)';
  return cls?.name ? `${cls.name.text}.${base}` : base;
}

/** A `// …` comment in the first 3 lines of the body, or right above the function: the stated reason. */
function reasonOf(node: ts.FunctionLikeDeclaration, sf: ts.SourceFile): string | undefined {
  const text = sf.text;
  const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
  const lines = text.split('\n');
  const window = [lines[start - 1] ?? '', ...lines.slice(start, start + 4)];
  const hit = window.find((l) => /\/\/\s*long\b/i.test(l));
  return hit?.trim();
}

interface LongFunction {
  file: string;
  line: number;
  name: string;
  lines: number;
  reason?: string;
}

function longFunctions(sf: ts.SourceFile, file: string, limit: number): LongFunction[] {
  const out: LongFunction[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const fn = node as ts.FunctionLikeDeclaration;
      const first = sf.getLineAndCharacterOfPosition(fn.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(fn.getEnd()).line;
      const lines = last - first + 1;
      if (lines > limit) out.push({ file, line: first + 1, name: nameOf(fn), lines, reason: reasonOf(fn, sf) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const EXPORTABLE = (n: ts.Node): n is ts.DeclarationStatement | ts.VariableStatement =>
  ts.isFunctionDeclaration(n) || ts.isClassDeclaration(n) || ts.isInterfaceDeclaration(n) || ts.isTypeAliasDeclaration(n) || ts.isEnumDeclaration(n) || ts.isVariableStatement(n);

/** Exported top-level declarations without a JSDoc comment (`/** … *\/` right above). */
function undocumentedExports(sf: ts.SourceFile, file: string): Array<{ file: string; line: number; name: string }> {
  const out: Array<{ file: string; line: number; name: string }> = [];
  for (const st of sf.statements) {
    if (!EXPORTABLE(st)) continue;
    if (!ts.getModifiers(st as ts.HasModifiers)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
    if (ts.getJSDocCommentsAndTags(ts.isVariableStatement(st) ? st.declarationList.declarations[0]! : st).length > 0) continue;
    // An overload's implementation shares the overloads' comment.
    if (ts.isFunctionDeclaration(st) && st.body && sf.statements.some((o) => o !== st && ts.isFunctionDeclaration(o) && !o.body && o.name?.text === st.name?.text)) continue;
    const name = ts.isVariableStatement(st) ? st.declarationList.declarations.map((d) => d.name.getText(sf)).join(', ') : (st.name?.getText(sf) ?? 'default');
    out.push({ file, line: sf.getLineAndCharacterOfPosition(st.getStart(sf)).line + 1, name });
  }
  return out;
}

function main(): number {
  const opts = parseArgs(process.argv.slice(2));
  let failures = 0;
  const long: LongFunction[] = [];
  const undocumented: Array<{ file: string; line: number; name: string }> = [];
  for (const dir of opts.dirs) {
    for (const file of sourceFiles(dir)) {
      const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
      long.push(...longFunctions(sf, file, opts.limit));
      if (opts.undocumented) undocumented.push(...undocumentedExports(sf, file));
    }
  }
  for (const f of long) {
    console.log(`${f.file}:${f.line}  ${f.name}  ${f.lines} lines${f.reason ? `  (justified: ${f.reason})` : ''}`);
    if (!f.reason) failures++;
  }
  for (const u of undocumented) console.log(`${u.file}:${u.line}  export ${u.name}  has no JSDoc comment`);
  failures += undocumented.length;
  console.log(`${long.length} function(s) over ${opts.limit} lines (${long.filter((f) => !f.reason).length} without a reason)${opts.undocumented ? `, ${undocumented.length} undocumented export(s)` : ''}`);
  return failures ? 1 : 0;
}

process.exitCode = main();
