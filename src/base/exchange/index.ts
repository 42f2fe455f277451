// base/exchange: the envelope layer so far (envelope, receipts, batch signatures, message log).
export { CanonicalError, canonicalJson, digestOf, sha256 } from './canonical.ts';
export * from './envelope.ts';
export * from './receipt.ts';
export * from './batch.ts';
export { leafHash, nodeHash, merkleTree, merkleRoot, inclusionProof, verifyInclusion } from './merkle.ts';
export {
  appendEntries,
  verifyLog,
  entryHash as logEntryHash,
  checkpointSigningInput,
  GENESIS_HASH as LOG_GENESIS_HASH,
  DEFAULT_CHECKPOINT_EVERY,
  type LogItem,
  type LogEntry,
  type Checkpoint,
  type LogVerifyResult,
  type AppendOptions,
} from './log.ts';
export { appendLog, verifyLogDb, setCheckpointEvery } from './store.ts';
