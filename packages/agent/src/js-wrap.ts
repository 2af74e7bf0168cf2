/**
 * Top-level `await` for the JS eval: code that only compiles inside an async function is run
 * as `(async () => { ... })()`. Line-based (no parser in the guest): column-0 declarations
 * become global assignments so they persist, and a column-0 last line that is an expression
 * is returned. Every rewrite is checked by compiling; if a rewrite does not compile, less is rewritten.
 */
import vm from 'node:vm';

const NOT_EXPRESSION = /^(}|\)|\]|\.|return\b|if\b|for\b|while\b|do\b|try\b|catch\b|finally\b|else\b|switch\b|case\b|default\b|throw\b|break\b|continue\b|let\b|const\b|var\b|function\b|class\b|async\s+function\b|import\b|export\b|\/\/|\/\*|\*)/;

function hoist(line: string): string {
  return line
    .replace(/^(?:let|const|var)\s+([A-Za-z_$][\w$]*)(\s*=)/, '$1$2')
    .replace(/^((?:async\s+)?function\s*\*?\s*)([A-Za-z_$][\w$]*)/, '$2 = $1$2')
    .replace(/^class\s+([A-Za-z_$][\w$]*)/, '$1 = class $1');
}

const compiles = (src: string): boolean => {
  try {
    new vm.Script(src);
    return true;
  } catch {
    return false;
  }
};

const wrap = (lines: string[]): string => `(async () => { ${lines.join('\n')}\n})()`;

/** Returns wrapper source, or null when even the plain wrapper does not compile. */
export function wrapTopLevelAwait(code: string): string | null {
  const plain = code.split('\n');
  const hoisted = plain.map(hoist);
  for (const lines of [hoisted, plain]) {
    const last = findLastLine(lines);
    if (last >= 0) {
      const line = lines[last]!;
      for (const candidate of returnCandidates(line)) {
        const withReturn = [...lines];
        withReturn[last] = candidate;
        const src = wrap(withReturn);
        if (compiles(src)) return src;
      }
    }
    const src = wrap(lines);
    if (compiles(src)) return src;
  }
  return null;
}

function findLastLine(lines: string[]): number {
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.trim() !== '') return i;
  return -1;
}

/** `a; b; c` -> `a; b; return (c);` tried at each `;` from the right, then the whole line. */
function returnCandidates(line: string): string[] {
  const body = line.replace(/;\s*$/, '');
  const out: string[] = [];
  for (let i = body.lastIndexOf(';'); i >= 0; i = body.lastIndexOf(';', i - 1)) {
    const tail = body.slice(i + 1).trim();
    if (tail && !NOT_EXPRESSION.test(tail)) out.push(`${body.slice(0, i + 1)} return (${tail});`);
    if (i === 0) break;
  }
  if (line === line.trimStart() && !NOT_EXPRESSION.test(body)) out.push(`return (${body});`);
  return out;
}
