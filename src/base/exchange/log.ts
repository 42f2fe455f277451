// The exchange message log as pure functions over entries: every message and receipt is an entry
// linked to the previous one by hash (as the audit chain links its entries: SHA-256 over a canonical
// JSON of every field but the entry's own hash), and every `every` entries a checkpoint signed by the
// node: the Merkle root (RFC 6962) of that run of entry hashes plus the previous checkpoint's hash.
// The chain finds an edited, inserted or deleted entry; the signed checkpoints find a chain that was
// rewritten from some point on with recomputed hashes (that needs the node key).
import type { KeyObject } from 'node:crypto';
import { isAlg, sign, verify, type Alg } from '../identity/crypto/index.ts';
import { canonicalJson, sha256 } from './canonical.ts';
import { merkleRoot } from './merkle.ts';

export const GENESIS_HASH = '0'.repeat(64);
export const DEFAULT_CHECKPOINT_EVERY = 1000;

/** what is logged: an event or a receipt, named by id and the hash that binds its content */
export interface LogItem {
  kind: 'event' | 'receipt';
  /** the event id (for a receipt: the id of the event it answers) */
  ref: string;
  /** member that signed the item */
  member: string;
  /** hex SHA-256 binding the content: eventHash of an event, SHA-256 of a receipt's signing input */
  digest: string;
  /** RFC 3339 */
  at: string;
}

export interface LogEntry extends LogItem {
  /** 1, 2, 3, ... */
  seq: number;
  prevHash: string;
  hash: string;
}

export interface Checkpoint {
  /** 1, 2, 3, ...: checkpoint n covers entries (n-1)·every+1 .. n·every */
  n: number;
  first: number;
  last: number;
  /** hex Merkle root of the covered entries' hashes */
  root: string;
  prevHash: string;
  at: string;
  alg: Alg;
  /** hex SHA-256 of checkpointSigningInput */
  hash: string;
  /** base64url DER over checkpointSigningInput */
  sig: string;
}

export type LogVerifyResult =
  | { ok: true; entries: number; checkpoints: number; head: string }
  | { ok: false; index: number; seq: number | null; checkpoint?: number; reason: 'seq' | 'hash' | 'link' | 'head' | 'checkpoint-missing' | 'checkpoint-range' | 'checkpoint-root' | 'checkpoint-link' | 'checkpoint-signature' | 'malformed' };

export function entryHash(e: Omit<LogEntry, 'hash'>): string {
  return sha256(canonicalJson({ kind: e.kind, ref: e.ref, member: e.member, digest: e.digest, at: e.at, seq: e.seq, prevHash: e.prevHash })).toString('hex');
}

export function checkpointSigningInput(c: Omit<Checkpoint, 'hash' | 'sig'>): string {
  return canonicalJson({ type: 'gusu.exchange.checkpoint.v1', n: c.n, first: c.first, last: c.last, root: c.root, prevHash: c.prevHash, at: c.at, alg: c.alg });
}

function rootOf(entries: readonly LogEntry[]): string {
  return merkleRoot(entries.map((e) => Buffer.from(e.hash, 'hex'))).toString('hex');
}

export interface AppendOptions {
  /** entries per checkpoint */
  every?: number;
  now?: () => Date;
}

/**
 * Appends items after the log (entries and checkpoints so far); returns only the new entries and
 * the new checkpoints, signed with the node's key. Needs only the entries since the last checkpoint.
 */
export function appendEntries(
  log: { entries: readonly LogEntry[]; checkpoints: readonly Checkpoint[] },
  items: readonly LogItem[],
  signer: { privateKey: string | KeyObject; alg: Alg },
  opts: AppendOptions = {},
): { entries: LogEntry[]; checkpoints: Checkpoint[] } {
  const every = opts.every ?? DEFAULT_CHECKPOINT_EVERY;
  if (!Number.isSafeInteger(every) || every < 1) throw new RangeError('every must be a positive integer');
  const now = opts.now ?? (() => new Date());
  const all = [...log.entries];
  const newEntries: LogEntry[] = [];
  const newCheckpoints: Checkpoint[] = [];
  let lastCp = log.checkpoints.at(-1);
  for (const item of items) {
    const prev = all.at(-1);
    const base = { kind: item.kind, ref: item.ref, member: item.member, digest: item.digest, at: item.at, seq: (prev?.seq ?? 0) + 1, prevHash: prev?.hash ?? GENESIS_HASH };
    const entry: LogEntry = { ...base, hash: entryHash(base) };
    all.push(entry);
    newEntries.push(entry);
    if (entry.seq % every === 0) {
      const first = entry.seq - every + 1;
      const covered = all.filter((e) => e.seq >= first && e.seq <= entry.seq);
      if (covered.length !== every) throw new RangeError(`the entries ${first}..${entry.seq} are needed to checkpoint`);
      const body = { n: entry.seq / every, first, last: entry.seq, root: rootOf(covered), prevHash: lastCp?.hash ?? GENESIS_HASH, at: now().toISOString(), alg: signer.alg };
      const input = checkpointSigningInput(body);
      const cp: Checkpoint = { ...body, hash: sha256(input).toString('hex'), sig: sign(signer.alg, signer.privateKey, input).toString('base64url') };
      newCheckpoints.push(cp);
      lastCp = cp;
    }
  }
  return { entries: newEntries, checkpoints: newCheckpoints };
}

/**
 * Verifies the whole log from seq 1: each entry's hash and link, then each checkpoint's range, root,
 * link and signature under the node's public key. Reports the first broken entry (index into entries).
 * Entries after the last checkpoint are covered by the chain only: a truncated tail is evident only
 * against a head (hash) kept elsewhere — compare the returned head.
 */
export function verifyLog(entries: readonly LogEntry[], checkpoints: readonly Checkpoint[], publicKey: string | Uint8Array | KeyObject, opts: { every?: number } = {}): LogVerifyResult {
  const every = opts.every ?? DEFAULT_CHECKPOINT_EVERY;
  let prev = GENESIS_HASH;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (!e || typeof e !== 'object') return { ok: false, index: i, seq: null, reason: 'malformed' };
    if (e.seq !== i + 1) return { ok: false, index: i, seq: e.seq ?? null, reason: 'seq' };
    let h: string;
    try {
      h = entryHash(e);
    } catch {
      return { ok: false, index: i, seq: e.seq, reason: 'malformed' };
    }
    if (h !== e.hash) return { ok: false, index: i, seq: e.seq, reason: 'hash' };
    if (e.prevHash !== prev) return { ok: false, index: i, seq: e.seq, reason: 'link' };
    prev = e.hash;
  }
  const expected = Math.floor(entries.length / every);
  let prevCp = GENESIS_HASH;
  for (let n = 1; n <= Math.max(expected, checkpoints.length); n++) {
    const cp = checkpoints[n - 1];
    const first = (n - 1) * every + 1;
    const last = n * every;
    const index = first - 1;
    const fail = (reason: Extract<LogVerifyResult, { ok: false }>['reason']): LogVerifyResult => ({ ok: false, index, seq: entries[index]?.seq ?? null, checkpoint: n, reason });
    if (!cp) return fail('checkpoint-missing');
    if (cp.n !== n || cp.first !== first || cp.last !== last || last > entries.length) return fail('checkpoint-range');
    if (rootOf(entries.slice(first - 1, last)) !== cp.root) return fail('checkpoint-root');
    if (cp.prevHash !== prevCp) return fail('checkpoint-link');
    let input: string;
    try {
      input = checkpointSigningInput(cp);
    } catch {
      return fail('malformed');
    }
    if (!isAlg(cp.alg) || sha256(input).toString('hex') !== cp.hash || typeof cp.sig !== 'string' || !verify(cp.alg, publicKey, input, Buffer.from(cp.sig, 'base64url'))) return fail('checkpoint-signature');
    prevCp = cp.hash;
  }
  return { ok: true, entries: entries.length, checkpoints: checkpoints.length, head: prev };
}
