// The exchange message log as pure functions over entries: every append is an entry linked to the
// previous one by hash (as the audit chain links its entries: SHA-256 over a canonical JSON of every
// field but the entry's own hash), and every `every` entries a checkpoint signed by the node: the
// Merkle root (RFC 6962) of that run of entry hashes plus the previous checkpoint's hash.
// An append of one message or receipt is one entry holding it; an append of several (a published
// batch, an acknowledgement of many) is ONE entry holding them all as `items`, its digest the Merkle
// root of the items (each leaf the canonical JSON of the whole item), so a batch costs one entry.
// The chain finds an edited, inserted or deleted entry, the root an edited, added or removed item;
// the signed checkpoints find a chain that was rewritten from some point on with recomputed hashes
// (that needs the node key).
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

/**
 * An item of a batch entry as stored: its ref and digest, and its member and time only where they
 * differ from the entry's (the entry's kind, member and at are those of its first item).
 */
export interface LogEntryItem {
  ref: string;
  digest: string;
  member?: string;
  at?: string;
}

export interface LogEntry extends LogItem {
  /** 1, 2, 3, ... */
  seq: number;
  prevHash: string;
  hash: string;
  /**
   * a batch entry (an append of several items of one kind): the items, and `digest` is their Merkle
   * root (itemsRoot); absent or null for an entry of one item, whose digest is the item's
   */
  items?: LogEntryItem[] | null;
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
  | { ok: true; entries: number; checkpoints: number; head: string; /** messages and receipts in the entries */ items: number }
  | {
      ok: false;
      index: number;
      seq: number | null;
      checkpoint?: number;
      /** 'items': a batch entry's items do not hash to its digest; 'message': a stored message is not (as stored) in the log (verifyLogDb) */
      reason: 'seq' | 'hash' | 'link' | 'head' | 'items' | 'message' | 'checkpoint-missing' | 'checkpoint-range' | 'checkpoint-root' | 'checkpoint-link' | 'checkpoint-signature' | 'malformed';
      /** reason 'message': the message's seq in exchange.message, and what is wrong with it */
      message?: number;
      detail?: string;
    };

/** The hash of an entry; a batch entry's also covers its number of items. */
export function entryHash(e: Omit<LogEntry, 'hash'>): string {
  const base = { kind: e.kind, ref: e.ref, member: e.member, digest: e.digest, at: e.at, seq: e.seq, prevHash: e.prevHash };
  return sha256(canonicalJson(e.items ? { ...base, n: e.items.length } : base)).toString('hex');
}

/** The full items of a batch entry (its stored items with the entry's kind, and member and at where omitted). */
export function expandItems(e: Pick<LogEntry, 'kind' | 'member' | 'at'> & { items: readonly LogEntryItem[] }): LogItem[] {
  return e.items.map((i) => ({ kind: e.kind, ref: i.ref, member: i.member ?? e.member, digest: i.digest, at: i.at ?? e.at }));
}

/** A batch entry's digest: the Merkle root (RFC 6962) of its items, each leaf the canonical JSON of the whole item. */
export function itemsRoot(items: readonly LogItem[]): string {
  return merkleRoot(items.map((i) => Buffer.from(canonicalJson({ kind: i.kind, ref: i.ref, member: i.member, digest: i.digest, at: i.at })))).toString('hex');
}

/** What an append of these items (all of one kind) logs as one entry, before seq and hashes. */
function entryBody(items: readonly LogItem[]): Pick<LogEntry, 'kind' | 'ref' | 'member' | 'digest' | 'at' | 'items'> {
  const first = items[0]!;
  if (items.length === 1) return { kind: first.kind, ref: first.ref, member: first.member, digest: first.digest, at: first.at };
  const stored = items.map((i): LogEntryItem => ({ ref: i.ref, digest: i.digest, ...(i.member !== first.member ? { member: i.member } : {}), ...(i.at !== first.at ? { at: i.at } : {}) }));
  return { kind: first.kind, ref: first.ref, member: first.member, digest: itemsRoot(items), at: first.at, items: stored };
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
 * the new checkpoints, signed with the node's key. Needs only the entries since the last checkpoint
 * (their seq and hash). One entry per run of items of the same kind: for an append of one kind (what
 * the node makes: a publish's events, an acknowledgement's receipts), one entry.
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
  const runs: LogItem[][] = [];
  for (const item of items) {
    const run = runs.at(-1);
    if (run && run[0]!.kind === item.kind) run.push(item);
    else runs.push([item]);
  }
  for (const run of runs) {
    const prev = all.at(-1);
    const base = { ...entryBody(run), seq: (prev?.seq ?? 0) + 1, prevHash: prev?.hash ?? GENESIS_HASH };
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
 * Verifies the whole log from seq 1: each entry's hash and link (and a batch entry's items against its
 * digest), then each checkpoint's range, root, link and signature under the node's public key.
 * Reports the first broken entry (index into entries).
 * Entries after the last checkpoint are covered by the chain only: a truncated tail is evident only
 * against a head (hash) kept elsewhere — compare the returned head.
 */
export function verifyLog(entries: readonly LogEntry[], checkpoints: readonly Checkpoint[], publicKey: string | Uint8Array | KeyObject, opts: { every?: number } = {}): LogVerifyResult {
  const every = opts.every ?? DEFAULT_CHECKPOINT_EVERY;
  let prev = GENESIS_HASH;
  let items = 0;
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
    if (e.items) {
      let root: string;
      try {
        if (!Array.isArray(e.items) || e.items.length < 2) throw new TypeError('a batch entry has two items or more');
        const full = expandItems(e as LogEntry & { items: LogEntryItem[] });
        if (full[0]!.member !== e.member || full[0]!.at !== e.at || full[0]!.ref !== e.ref) throw new TypeError('the entry is not named by its first item');
        root = itemsRoot(full);
      } catch {
        return { ok: false, index: i, seq: e.seq, reason: 'malformed' };
      }
      if (root !== e.digest) return { ok: false, index: i, seq: e.seq, reason: 'items' };
      items += e.items.length;
    } else items++;
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
  return { ok: true, entries: entries.length, checkpoints: checkpoints.length, head: prev, items };
}
