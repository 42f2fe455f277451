// Merkle trees as RFC 6962 §2.1 (= RFC 9162 §2.1) defines them, over SHA-256:
//   leaf hash  = SHA-256(0x00 ‖ leaf)
//   node hash  = SHA-256(0x01 ‖ left ‖ right)
//   MTH of n > 1 leaves splits at k, the largest power of two below n; the empty tree is SHA-256('').
// The 0x00/0x01 prefixes keep a leaf from passing for an inner node (second-preimage attacks).
import { createHash } from 'node:crypto';

const ZERO = Buffer.from([0]);
const ONE = Buffer.from([1]);

export function leafHash(leaf: Uint8Array): Buffer {
  return createHash('sha256').update(ZERO).update(leaf).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(ONE).update(left).update(right).digest();
}

function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * Root and, for every leaf, its inclusion path (deepest sibling first, as RFC 6962 PATH(m, D[n])),
 * in one O(n log n) pass.
 */
export function merkleTree(leaves: readonly Uint8Array[]): { root: Buffer; proofs: Buffer[][] } {
  if (leaves.length === 0) return { root: createHash('sha256').digest(), proofs: [] };
  const proofs: Buffer[][] = leaves.map(() => []);
  const build = (lo: number, hi: number): Buffer => {
    if (hi - lo === 1) return leafHash(leaves[lo]!);
    const k = split(hi - lo);
    const l = build(lo, lo + k);
    const r = build(lo + k, hi);
    for (let i = lo; i < lo + k; i++) proofs[i]!.push(r);
    for (let i = lo + k; i < hi; i++) proofs[i]!.push(l);
    return nodeHash(l, r);
  };
  return { root: build(0, leaves.length), proofs };
}

/** MTH(D[n]) of the leaves (leaf data, hashed here with the 0x00 prefix). */
export function merkleRoot(leaves: readonly Uint8Array[]): Buffer {
  return merkleTree(leaves).root;
}

/** PATH(index, D[n]): the sibling hashes from the leaf up. */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Buffer[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`no leaf ${index} in a tree of ${leaves.length}`);
  // one path only: walk down, collecting siblings top-first, then reverse
  const path: Buffer[] = [];
  let lo = 0;
  let hi = leaves.length;
  while (hi - lo > 1) {
    const k = split(hi - lo);
    if (index < lo + k) {
      path.push(merkleRoot(leaves.slice(lo + k, hi)));
      hi = lo + k;
    } else {
      path.push(merkleRoot(leaves.slice(lo, lo + k)));
      lo = lo + k;
    }
  }
  return path.reverse();
}

/** RFC 9162 §2.1.3.2: true iff proof shows leaf (data, not yet hashed) at index in the tree of size with root. */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (proof.some((p) => p.length !== 32)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = leafHash(leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.from(root).equals(r);
}
