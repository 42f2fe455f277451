// Conditions on sequence flows: a small expression language over the instance's variables, parsed,
// never eval'd. BPMN tools write conditions as `${decision == "approve"}`; the ${ } is optional.
//   expr   := or
//   or     := and (('or' | '||') and)*
//   and    := not (('and' | '&&') not)*
//   not    := ('not' | '!') not | cmp
//   cmp    := value (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in') value)?
//   value  := number | 'string' | "string" | true | false | null | name('.'name)* | '(' expr ')' | '[' value, ... ']'

export type Expr =
  | { k: 'lit'; v: unknown }
  | { k: 'var'; path: string[] }
  | { k: 'list'; items: Expr[] }
  | { k: 'not'; e: Expr }
  | { k: 'and' | 'or'; a: Expr; b: Expr }
  | { k: 'cmp'; op: '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in'; a: Expr; b: Expr };

export class ExprError extends Error {}

type Tok = { t: 'num'; v: number } | { t: 'str'; v: string } | { t: 'id'; v: string } | { t: 'op'; v: string };

const MAX_SOURCE = 500;

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? '') && (out.length === 0 || out.at(-1)!.t === 'op'))) {
      const m = /^-?\d+(\.\d+)?/.exec(src.slice(i))!;
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) j++;
        s += src[j];
        j++;
      }
      if (j >= src.length) throw new ExprError(`unterminated string at ${i + 1}`);
      out.push({ t: 'str', v: s });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_\u4e00-\u9fff]/.test(c)) {
      const m = /^[A-Za-z_\u4e00-\u9fff][A-Za-z0-9_\u4e00-\u9fff]*/.exec(src.slice(i))!;
      out.push({ t: 'id', v: m[0] });
      i += m[0].length;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) {
      out.push({ t: 'op', v: two });
      i += 2;
      continue;
    }
    if ('<>!().,[]'.includes(c)) {
      out.push({ t: 'op', v: c });
      i++;
      continue;
    }
    throw new ExprError(`unexpected ${JSON.stringify(c)} at ${i + 1}`);
  }
  return out;
}

export function parseExpr(source: string): Expr {
  if (typeof source !== 'string') throw new ExprError('expected an expression');
  let src = source.trim();
  if (src.length > MAX_SOURCE) throw new ExprError(`longer than ${MAX_SOURCE} characters`);
  const wrapped = /^\$\{([\s\S]*)\}$/.exec(src);
  if (wrapped) src = wrapped[1]!.trim();
  if (!src) throw new ExprError('empty expression');
  const toks = tokenize(src);
  let pos = 0;
  let depth = 0;
  const peek = () => toks[pos];
  const isOp = (v: string) => {
    const t = toks[pos];
    return !!t && ((t.t === 'op' && t.v === v) || (t.t === 'id' && t.v === v));
  };
  const expect = (v: string) => {
    if (!isOp(v)) throw new ExprError(`expected ${v}${peek() ? ` before ${JSON.stringify((peek() as { v: unknown }).v)}` : ' at the end'}`);
    pos++;
  };
  const value = (): Expr => {
    const t = peek();
    if (!t) throw new ExprError('the expression ends too early');
    if (++depth > 50) throw new ExprError('nested too deeply');
    try {
      if (t.t === 'num') return pos++, { k: 'lit', v: t.v };
      if (t.t === 'str') return pos++, { k: 'lit', v: t.v };
      if (t.t === 'op' && t.v === '(') {
        pos++;
        const e = or();
        expect(')');
        return e;
      }
      if (t.t === 'op' && t.v === '[') {
        pos++;
        const items: Expr[] = [];
        if (!isOp(']')) {
          items.push(value());
          while (isOp(',')) {
            pos++;
            items.push(value());
          }
        }
        expect(']');
        return { k: 'list', items };
      }
      if (t.t === 'id') {
        if (['and', 'or', 'not', 'in'].includes(t.v)) throw new ExprError(`unexpected ${t.v}`);
        pos++;
        if (t.v === 'true') return { k: 'lit', v: true };
        if (t.v === 'false') return { k: 'lit', v: false };
        if (t.v === 'null') return { k: 'lit', v: null };
        const path = [t.v];
        while (isOp('.')) {
          pos++;
          const n = peek();
          if (!n || n.t !== 'id') throw new ExprError('expected a name after .');
          pos++;
          path.push(n.v);
        }
        if (path.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) throw new ExprError('that name is not allowed');
        return { k: 'var', path };
      }
      throw new ExprError(`unexpected ${JSON.stringify(t.v)}`);
    } finally {
      depth--;
    }
  };
  const cmp = (): Expr => {
    const a = value();
    const t = peek();
    if (t && ((t.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v)) || (t.t === 'id' && t.v === 'in'))) {
      pos++;
      return { k: 'cmp', op: t.v as '==', a, b: value() };
    }
    return a;
  };
  const not = (): Expr => {
    if (isOp('not') || isOp('!')) {
      pos++;
      if (++depth > 50) throw new ExprError('nested too deeply');
      const e = { k: 'not' as const, e: not() };
      depth--;
      return e;
    }
    return cmp();
  };
  const and = (): Expr => {
    let a = not();
    while (isOp('and') || isOp('&&')) {
      pos++;
      a = { k: 'and', a, b: not() };
    }
    return a;
  };
  const or = (): Expr => {
    let a = and();
    while (isOp('or') || isOp('||')) {
      pos++;
      a = { k: 'or', a, b: and() };
    }
    return a;
  };
  const e = or();
  if (pos < toks.length) throw new ExprError(`unexpected ${JSON.stringify((toks[pos] as { v: unknown }).v)}`);
  return e;
}

function lookup(vars: Record<string, unknown>, path: string[]): unknown {
  let v: unknown = vars;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v as object, p)) return null;
    v = (v as Record<string, unknown>)[p];
  }
  return v === undefined ? null : v;
}

function evalValue(e: Expr, vars: Record<string, unknown>): unknown {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'var':
      return lookup(vars, e.path);
    case 'list':
      return e.items.map((x) => evalValue(x, vars));
    case 'not':
      return !truthy(evalValue(e.e, vars));
    case 'and':
      return truthy(evalValue(e.a, vars)) && truthy(evalValue(e.b, vars));
    case 'or':
      return truthy(evalValue(e.a, vars)) || truthy(evalValue(e.b, vars));
    case 'cmp': {
      const a = evalValue(e.a, vars);
      const b = evalValue(e.b, vars);
      switch (e.op) {
        case '==':
          return a === b;
        case '!=':
          return a !== b;
        case 'in':
          return Array.isArray(b) && b.includes(a);
        default: {
          // ordering only between two numbers or two strings; anything else is false
          if (!((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string'))) return false;
          return e.op === '<' ? a < b : e.op === '<=' ? a <= b : e.op === '>' ? a > b : a >= b;
        }
      }
    }
  }
}

function truthy(v: unknown): boolean {
  return v === true || (typeof v === 'number' && v !== 0) || (typeof v === 'string' && v !== '') || (Array.isArray(v) && v.length > 0) || (v !== null && typeof v === 'object');
}

export function evaluate(e: Expr, vars: Record<string, unknown>): boolean {
  return truthy(evalValue(e, vars));
}

const cache = new Map<string, Expr>();
/** Parses once per distinct source (definitions are few; conditions are evaluated often). */
export function condition(source: string): Expr {
  let e = cache.get(source);
  if (!e) {
    e = parseExpr(source);
    if (cache.size > 5000) cache.clear();
    cache.set(source, e);
  }
  return e;
}
