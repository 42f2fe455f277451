// 记录关联 — the platform's record-linkage engine, the public face. The population and legal-entity
// registries link source records with it; `gusu link` runs it over CSV files. See docs/linkage.md.
export { link, scorePairs, defaultComparisons, DEFAULT_SETTINGS, DEFAULT_BLOCKING } from './engine.ts';
export type { LinkRecord, LinkInput, LinkOptions, LinkResult, LinkSettings, LinkStats, ScoredPair, Refusal, Model, ComparisonModel, ComparisonSpec, BlockingRule, BlockKey } from './engine.ts';
export { COMPARATORS, CANONICAL_FIELDS, isKnownField, kindOfField } from './comparators.ts';
export type { Comparator, ComparatorKind, CanonicalField, Feature } from './comparators.ts';
export { MemoryReviewStore, JsonFileReviewStore, pairKey, recordKey } from './review.ts';
export type { ReviewStore, ReviewDecision, Decision, PendingReview } from './review.ts';
export { linkCommand, runLink, parseMapping, readRecords, LINK_USAGE } from './cli.ts';
export type { Mapping, FileMapping } from './cli.ts';
export { jaroWinkler, damerau, levenshtein } from './strings.ts';
export { normalizeText, soundTokens, addressTokens, parseDate, simplify } from './normalize.ts';
