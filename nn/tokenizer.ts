/**
 * A deterministic word tokenizer for instructions and stage texts. No learned merges and no
 * downloads: the vocabulary is the sorted set of words of the texts it is built from (the task
 * instructions and stage texts), so the same texts always give the same ids on every machine.
 *
 * Text -> words: lowercase, then every maximal run of ASCII letters and digits is a word
 * ("Put the cup, then 2 blocks!" -> put the cup then 2 blocks). Everything else separates words.
 *
 * Ids (vocabulary size = 1 + words + buckets):
 *   0                          padding (mask 0)
 *   1 .. words                 the known words, in sorted order
 *   words+1 .. words+buckets   unknown words, hashed (32-bit FNV-1a of the word, modulo buckets)
 *
 * Hashing unknown words into reserved buckets (instead of one UNK id) keeps different unknown
 * words apart most of the time, so a model can still tell two new instructions apart, and the
 * mapping never depends on which unknown words were seen before.
 *
 * Sequences longer than `maxLength` are cut; shorter ones are padded with 0. The model reads the
 * mask (1 where the id is not padding). `toJSON` / `fromJSON` store the tokenizer in a model's
 * metadata, so an exported model carries the exact vocabulary it was trained with.
 */

/** Serialised form of a tokenizer (what model metadata stores). */
export interface TokenizerSpec {
  /** Known words, sorted, unique, each matching /^[a-z0-9]+$/. */
  words: string[];
  /** Number of hash buckets for unknown words (>= 1). */
  buckets: number;
  /** Length every encoded sequence is padded or cut to (>= 1). */
  maxLength: number;
}

/** Default number of hash buckets for unknown words. */
export const DEFAULT_BUCKETS = 64;
/** Default sequence length (the longest task instruction has 17 words; stage texts run longer and are cut). */
export const DEFAULT_MAX_LENGTH = 24;

const WORD = /[a-z0-9]+/g;

/** The words of `text`: lowercase runs of ASCII letters and digits, in order. */
export function words(text: string): string[] {
  return text.toLowerCase().match(WORD) ?? [];
}

/** 32-bit FNV-1a hash of a string's UTF-16 code units (stable across platforms). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Encoded texts: ids [n, maxLength] (int64, row-major) and mask [n, maxLength] (1 = token). */
export interface Encoded {
  ids: BigInt64Array;
  mask: Float32Array;
  shape: [number, number];
}

export class Tokenizer {
  readonly words: readonly string[];
  readonly buckets: number;
  readonly maxLength: number;
  private readonly index: Map<string, number>;

  constructor(spec: TokenizerSpec) {
    if (!Number.isInteger(spec.buckets) || spec.buckets < 1) throw new Error(`tokenizer: buckets must be an integer >= 1, got ${spec.buckets}`);
    if (!Number.isInteger(spec.maxLength) || spec.maxLength < 1) throw new Error(`tokenizer: maxLength must be an integer >= 1, got ${spec.maxLength}`);
    if (!Array.isArray(spec.words)) throw new Error(`tokenizer: words must be an array of strings, got ${typeof spec.words}`);
    spec.words.forEach((w, i) => {
      if (typeof w !== 'string' || !/^[a-z0-9]+$/.test(w)) throw new Error(`tokenizer: word ${i} is ${JSON.stringify(w)}, expected lowercase letters and digits`);
      if (i > 0 && !(spec.words[i - 1] < w)) throw new Error(`tokenizer: words must be sorted and unique; '${spec.words[i - 1]}' comes before '${w}'`);
    });
    this.words = [...spec.words];
    this.buckets = spec.buckets;
    this.maxLength = spec.maxLength;
    this.index = new Map(this.words.map((w, i) => [w, i + 1]));
  }

  /** A tokenizer whose vocabulary is every word of `texts`. */
  static fromTexts(texts: Iterable<string>, options: { buckets?: number; maxLength?: number } = {}): Tokenizer {
    const set = new Set<string>();
    for (const t of texts) for (const w of words(t)) set.add(w);
    // Plain code-unit order: locale-independent, so every machine builds the same vocabulary.
    const sorted = [...set].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return new Tokenizer({ words: sorted, buckets: options.buckets ?? DEFAULT_BUCKETS, maxLength: options.maxLength ?? DEFAULT_MAX_LENGTH });
  }

  /** Restores a tokenizer from `toJSON()` output (e.g. model metadata); throws naming the bad field. */
  static fromJSON(json: string | TokenizerSpec): Tokenizer {
    let spec: TokenizerSpec;
    try {
      spec = typeof json === 'string' ? (JSON.parse(json) as TokenizerSpec) : json;
    } catch (err) {
      throw new Error(`tokenizer: not valid JSON (${(err as Error).message}): ${String(json).slice(0, 80)}`);
    }
    if (spec === null || typeof spec !== 'object') throw new Error(`tokenizer: expected an object {words, buckets, maxLength}, got ${JSON.stringify(spec)}`);
    return new Tokenizer(spec);
  }

  /** Number of distinct ids (the embedding table size). */
  get vocabSize(): number {
    return 1 + this.words.length + this.buckets;
  }

  /** Id of one word (already normalised by `words`). */
  wordId(word: string): number {
    return this.index.get(word) ?? 1 + this.words.length + (fnv1a(word) % this.buckets);
  }

  /** Ids of `text`, unpadded and uncut. */
  tokenize(text: string): number[] {
    return words(text).map((w) => this.wordId(w));
  }

  /** Encodes texts into padded id and mask arrays of shape [texts.length, maxLength]. */
  encode(texts: readonly string[]): Encoded {
    const L = this.maxLength;
    const ids = new BigInt64Array(texts.length * L);
    const mask = new Float32Array(texts.length * L);
    texts.forEach((t, r) => {
      const tok = this.tokenize(t).slice(0, L);
      tok.forEach((id, j) => {
        ids[r * L + j] = BigInt(id);
        mask[r * L + j] = 1;
      });
    });
    return { ids, mask, shape: [texts.length, L] };
  }

  toJSON(): TokenizerSpec {
    return { words: [...this.words], buckets: this.buckets, maxLength: this.maxLength };
  }
}
