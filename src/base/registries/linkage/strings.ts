// String similarity for the per-pair comparisons: Jaro-Winkler, Levenshtein and Damerau (optimal
// string alignment) distance. They work on UTF-16 code units (every Han character of the BMP is one
// unit) and reuse module-level buffers, so a comparison allocates nothing.

let flagsA = new Uint8Array(64);
let flagsB = new Uint8Array(64);
let row0 = new Int32Array(64);
let row1 = new Int32Array(64);
let row2 = new Int32Array(64);

function grow(n: number): void {
  if (flagsA.length > n) return;
  let size = flagsA.length;
  while (size <= n) size *= 2;
  flagsA = new Uint8Array(size);
  flagsB = new Uint8Array(size);
  row0 = new Int32Array(size);
  row1 = new Int32Array(size);
  row2 = new Int32Array(size);
}

/** Jaro similarity in [0, 1]; 1 for two equal strings (two empty strings included). */
export function jaro(a: string, b: string): number {
  if (a === b) return 1;
  const la = a.length;
  const lb = b.length;
  if (la === 0 || lb === 0) return 0;
  grow(Math.max(la, lb));
  const range = Math.max(0, (Math.max(la, lb) >> 1) - 1);
  flagsA.fill(0, 0, la);
  flagsB.fill(0, 0, lb);
  let matches = 0;
  for (let i = 0; i < la; i++) {
    const lo = Math.max(0, i - range);
    const hi = Math.min(lb - 1, i + range);
    const c = a.charCodeAt(i);
    for (let j = lo; j <= hi; j++) {
      if (flagsB[j] === 0 && b.charCodeAt(j) === c) {
        flagsA[i] = 1;
        flagsB[j] = 1;
        matches++;
        break;
      }
    }
  }
  if (matches === 0) return 0;
  let k = 0;
  let transpositions = 0;
  for (let i = 0; i < la; i++) {
    if (flagsA[i] === 0) continue;
    while (flagsB[k] === 0) k++;
    if (a.charCodeAt(i) !== b.charCodeAt(k)) transpositions++;
    k++;
  }
  const m = matches;
  return (m / la + m / lb + (m - transpositions / 2) / m) / 3;
}

/** Jaro-Winkler similarity (prefix scale 0.1, common prefix of at most 4). */
export function jaroWinkler(a: string, b: string): number {
  const j = jaro(a, b);
  if (j === 1 || j === 0) return j;
  const max = Math.min(4, a.length, b.length);
  let prefix = 0;
  while (prefix < max && a.charCodeAt(prefix) === b.charCodeAt(prefix)) prefix++;
  return j + prefix * 0.1 * (1 - j);
}

/** Levenshtein distance; stops early and returns limit + 1 once the distance must exceed limit. */
export function levenshtein(a: string, b: string, limit = Infinity): number {
  if (a === b) return 0;
  let la = a.length;
  let lb = b.length;
  if (Math.abs(la - lb) > limit) return limit + 1;
  if (la === 0) return lb;
  if (lb === 0) return la;
  grow(lb + 1);
  let prev = row0;
  let cur = row1;
  for (let j = 0; j <= lb; j++) prev[j] = j;
  for (let i = 1; i <= la; i++) {
    cur[0] = i;
    let rowMin = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= lb; j++) {
      const cost = ca === b.charCodeAt(j - 1) ? 0 : 1;
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > limit) return limit + 1;
    const t = prev;
    prev = cur;
    cur = t;
  }
  la = prev[lb]!;
  return la;
}

/** Damerau-Levenshtein distance (optimal string alignment: adjacent transpositions cost 1). */
export function damerau(a: string, b: string, limit = Infinity): number {
  if (a === b) return 0;
  const la = a.length;
  const lb = b.length;
  if (Math.abs(la - lb) > limit) return limit + 1;
  if (la === 0) return lb;
  if (lb === 0) return la;
  grow(lb + 1);
  let twoAgo = row0;
  let prev = row1;
  let cur = row2;
  for (let j = 0; j <= lb; j++) prev[j] = j;
  let prevMin = 0;
  for (let i = 1; i <= la; i++) {
    cur[0] = i;
    let rowMin = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= lb; j++) {
      const cb = b.charCodeAt(j - 1);
      const cost = ca === cb ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && ca === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === cb) v = Math.min(v, twoAgo[j - 2]! + 1);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    // a transposition reaches back two rows: stop only when both are past the limit
    if (rowMin > limit && prevMin > limit) return limit + 1;
    prevMin = rowMin;
    const t = twoAgo;
    twoAgo = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb]!;
}

/** Whether a and b are at most one edit apart (insert, delete, substitute or swap two neighbours): damerau(a, b) <= 1 in one pass. */
export function withinOneEdit(a: string, b: string): boolean {
  const la = a.length;
  const lb = b.length;
  if (la === lb) {
    let i = 0;
    while (i < la && a.charCodeAt(i) === b.charCodeAt(i)) i++;
    if (i >= la - 1) return true; // equal, or only the last differs
    // substitution at i, or transposition of i and i+1; the rest must be equal
    let start = i + 1;
    if (a.charCodeAt(i) === b.charCodeAt(i + 1) && a.charCodeAt(i + 1) === b.charCodeAt(i)) start = i + 2;
    else if (a.charCodeAt(i + 1) !== b.charCodeAt(i + 1)) return false;
    for (let j = start; j < la; j++) if (a.charCodeAt(j) !== b.charCodeAt(j)) return false;
    return true;
  }
  if (la === lb + 1) return oneDeletion(a, b);
  if (lb === la + 1) return oneDeletion(b, a);
  return false;
}

/** long is short with one character more */
function oneDeletion(long: string, short: string): boolean {
  let i = 0;
  while (i < short.length && long.charCodeAt(i) === short.charCodeAt(i)) i++;
  for (let j = i; j < short.length; j++) if (long.charCodeAt(j + 1) !== short.charCodeAt(j)) return false;
  return true;
}

/** 32 buckets of the characters of s (code unit mod 32) as bits: a cheap test of what two strings can share. */
export function charMask(s: string): number {
  let m = 0;
  for (let i = 0; i < s.length; i++) m |= 1 << (s.charCodeAt(i) & 31);
  return m;
}

/**
 * An upper bound of jaroWinkler(a, b), from the characters of a whose bucket is in b's mask (only
 * those can match) and the common prefix: lets a comparison skip Jaro for clearly different strings.
 */
export function jaroWinklerBound(a: string, b: string, maskB: number): number {
  const la = a.length;
  const lb = b.length;
  if (la === 0 || lb === 0) return a === b ? 1 : 0;
  let possible = 0;
  for (let i = 0; i < la; i++) if (maskB & (1 << (a.charCodeAt(i) & 31))) possible++;
  const m = Math.min(possible, lb);
  if (m === 0) return 0;
  const j = (m / la + m / lb + 1) / 3;
  const max = Math.min(4, la, lb);
  let prefix = 0;
  while (prefix < max && a.charCodeAt(prefix) === b.charCodeAt(prefix)) prefix++;
  return j + prefix * 0.1 * (1 - j);
}
