// Canonical JSON: the one byte sequence every exchange hash and signature is computed over.
//
// RFC 8785 (JCS) for the values the exchange carries: object members sorted by UTF-16 code units,
// no whitespace, strings and numbers exactly as JSON.stringify writes them (ECMAScript number
// serialisation, -0 as 0). Unlike the audit log (which makes hostile input storable), this refuses
// anything that is not plainly JSON, because a signer and a verifier must never disagree silently:
// undefined, functions, symbols, bigint, NaN and ±Infinity, sparse arrays, non-plain objects (Date,
// Map, Buffer, class instances), cycles, and strings with a lone surrogate (UTF-8 cannot encode one,
// so two parties could hash different bytes for the same string).
import { createHash } from 'node:crypto';

export class CanonicalError extends Error {}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const MAX_DEPTH = 64;

function str(s: string, path: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalError(`${path}: a string with a lone surrogate is not canonical JSON`);
  return JSON.stringify(s);
}

function write(v: unknown, path: string, depth: number, seen: Set<object>): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return str(v, path);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new CanonicalError(`${path}: ${v} is not a JSON number`);
      return JSON.stringify(v);
    case 'object':
      break;
    default:
      throw new CanonicalError(`${path}: a ${typeof v} is not a JSON value`);
  }
  if (depth >= MAX_DEPTH) throw new CanonicalError(`${path}: nested deeper than ${MAX_DEPTH}`);
  const o = v as object;
  if (seen.has(o)) throw new CanonicalError(`${path}: a cycle is not JSON`);
  seen.add(o);
  let out: string;
  if (Array.isArray(o)) {
    const parts: string[] = [];
    for (let i = 0; i < o.length; i++) {
      if (!(i in o)) throw new CanonicalError(`${path}[${i}]: a hole in an array is not JSON`);
      parts.push(write(o[i], `${path}[${i}]`, depth + 1, seen));
    }
    out = `[${parts.join(',')}]`;
  } else {
    const proto = Object.getPrototypeOf(o);
    if (proto !== Object.prototype && proto !== null) throw new CanonicalError(`${path}: only plain objects are JSON (got ${proto?.constructor?.name ?? 'an exotic object'})`);
    if (Object.getOwnPropertySymbols(o).length) throw new CanonicalError(`${path}: symbol keys are not JSON`);
    const rec = o as Record<string, unknown>;
    const parts: string[] = [];
    for (const k of Object.keys(rec).sort()) parts.push(`${str(k, path)}:${write(rec[k], `${path}.${k}`, depth + 1, seen)}`);
    out = `{${parts.join(',')}}`;
  }
  seen.delete(o);
  return out;
}

/** The canonical JSON text of value; CanonicalError for anything that is not plainly JSON. */
export function canonicalJson(value: unknown): string {
  return write(value, '$', 0, new Set());
}

export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).digest();
}

/** gusudigest: SHA-256 of the canonical JSON of data, lower-case hex (64 digits). */
export function digestOf(data: unknown): string {
  return sha256(canonicalJson(data)).toString('hex');
}
