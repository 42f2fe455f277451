// The DER shapes this layer reads and writes by hand: ECDSA-Sig-Value (both families sign as
// SEQUENCE { r INTEGER, s INTEGER }, RFC 3279 §2.2.3 and GB/T 35276 §7.3) and the outer
// tag-length-value walk used to find the exact signed bytes inside a certificate, CRL or CSR.
// Decoding is strict: definite minimal lengths, minimal positive integers, nothing trailing.

export interface Tlv {
  tag: number;
  /** offset of the tag byte */
  start: number;
  /** offset of the first content byte */
  contentStart: number;
  /** offset just past the content */
  end: number;
}

export class DerError extends Error {}

/** Reads one TLV at `offset` (single-byte tags only, as every structure here uses). */
export function readTlv(der: Uint8Array, offset: number, limit = der.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated');
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used here');
  let len = der[offset + 1]!;
  let contentStart = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('indefinite or oversized length');
    if (contentStart + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[contentStart + i]!;
    if (der[contentStart] === 0 || len < 0x80) throw new DerError('non-minimal length');
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > limit) throw new DerError('truncated content');
  return { tag, start: offset, contentStart, end };
}

/** The TLVs directly inside a constructed value. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let at = parent.contentStart;
  while (at < parent.end) {
    const t = readTlv(der, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function integerBytes(v: bigint): number[] {
  if (v <= 0n) throw new DerError('signature integers are positive');
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  const bytes = Array.from(Buffer.from(hex, 'hex'));
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return [0x02, ...lengthBytes(bytes.length), ...bytes];
}

export function encodeSignature(r: bigint, s: bigint): Buffer {
  const body = [...integerBytes(r), ...integerBytes(s)];
  return Buffer.from([0x30, ...lengthBytes(body.length), ...body]);
}

function readInteger(der: Uint8Array, t: Tlv): bigint {
  if (t.tag !== 0x02) throw new DerError('expected INTEGER');
  const len = t.end - t.contentStart;
  if (len === 0) throw new DerError('empty INTEGER');
  const first = der[t.contentStart]!;
  if (first & 0x80) throw new DerError('negative INTEGER');
  if (first === 0 && len > 1 && !(der[t.contentStart + 1]! & 0x80)) throw new DerError('non-minimal INTEGER');
  return BigInt('0x' + Buffer.from(der.subarray(t.contentStart, t.end)).toString('hex'));
}

/** r and s from a DER ECDSA-Sig-Value; throws DerError unless the encoding is exact DER. */
export function decodeSignature(der: Uint8Array): { r: bigint; s: bigint } {
  const seq = readTlv(der, 0);
  if (seq.tag !== 0x30 || seq.end !== der.length) throw new DerError('expected one SEQUENCE');
  const items = children(der, seq);
  if (items.length !== 2) throw new DerError('expected two INTEGERs');
  return { r: readInteger(der, items[0]!), s: readInteger(der, items[1]!) };
}

export function bigintToBytes(v: bigint, length: number): Buffer {
  const hex = v.toString(16);
  if (hex.length > length * 2) throw new RangeError(`integer does not fit in ${length} bytes`);
  return Buffer.from(hex.padStart(length * 2, '0'), 'hex');
}

export function bytesToBigint(b: Uint8Array): bigint {
  return b.length ? BigInt('0x' + Buffer.from(b).toString('hex')) : 0n;
}
