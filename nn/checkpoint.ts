/**
 * Checkpoints in the safetensors format (8-byte little-endian header length, JSON header, raw
 * little-endian data), so weights can be read by other tools. Holds the weights under their
 * parameter names, AdamW moments as `optim.m/<name>` and `optim.v/<name>`, and in the metadata the
 * optimizer step and RNG states. Written atomically; loading checks every name and shape and
 * reports all differences at once.
 */
import { readFileSync } from 'node:fs';
import type { Rng } from '../sim/rng.ts';
import { writeFileAtomic } from './model.ts';
import type { ParamSet } from './params.ts';
import type { Ema } from './ema.ts';
import type { Trainer } from './trainer.ts';

/**
 * One tensor of a safetensors file. F16 and BF16 keep their raw 16-bit patterns (`toFloat32`
 * widens them); nn/ writes F32, F64 and I64.
 */
export interface StoredTensor {
  dtype: 'F32' | 'F64' | 'I64' | 'F16' | 'BF16' | 'I32' | 'U8';
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Uint16Array | Int32Array | Uint8Array;
}

const DTYPE_OF = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array, F16: Uint16Array, BF16: Uint16Array, I32: Int32Array, U8: Uint8Array } as const;

/** IEEE half-precision bits -> float32 value (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** A stored float tensor's values as float32 (F16 and BF16 widened exactly, F64 rounded). */
export function toFloat32(t: StoredTensor, name = 'tensor'): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return t.data as Float32Array;
    case 'F64':
      return Float32Array.from(t.data as Float64Array);
    case 'F16': {
      const src = t.data as Uint16Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
      return out;
    }
    case 'BF16': {
      // bfloat16 is the upper half of a float32.
      const src = t.data as Uint16Array;
      const bits = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      throw new Error(`${name} is ${t.dtype}, not a float tensor (expected F32, F64, F16 or BF16)`);
  }
}

/** Encodes tensors (in the given order) and string metadata as safetensors bytes. */
export function encodeSafetensors(tensors: ReadonlyMap<string, StoredTensor>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new Error(`safetensors: ${name} has ${t.data.length} values for shape [${t.shape.join(',')}]`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned (lets readers map it as typed arrays).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Decodes safetensors bytes; damage (short file, bad header, offsets out of range) is an error. */
export function decodeSafetensors(bytes: Uint8Array, source = 'checkpoint'): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`${source}: ${bytes.length} bytes is too short for a safetensors file`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new Error(`${source}: header length ${headerLength} exceeds the file (${bytes.length} bytes); truncated?`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new Error(`${source}: the safetensors header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, StoredTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: [begin, end] } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const Ctor = DTYPE_OF[dtype as keyof typeof DTYPE_OF];
    if (!Ctor) throw new Error(`${source}: tensor ${name} has dtype ${dtype}; expected one of ${Object.keys(DTYPE_OF).join(', ')}`);
    if (dataStart + end > bytes.length || begin > end) throw new Error(`${source}: tensor ${name} data [${begin}, ${end}) lies outside the file; truncated?`);
    const count = shape.reduce((a, b) => a * b, 1);
    if ((end - begin) !== count * Ctor.BYTES_PER_ELEMENT) throw new Error(`${source}: tensor ${name} has ${end - begin} bytes for shape [${shape.join(',')}] ${dtype}`);
    // Copy: the source buffer may be unaligned, and callers own what they get.
    const data = new Ctor(count);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { dtype: dtype as StoredTensor['dtype'], shape, data });
  }
  return { tensors, metadata };
}

/** What a checkpoint holds besides the tensors. */
export interface CheckpointContents {
  params: ParamSet;
  /** Saves (and restores) the optimizer moments and step. */
  trainer?: Trainer;
  /**
   * Several optimizers (e.g. PPO's actor and critics, or BC and PPO phases), each saved under its
   * key: tensors `optim.<key>.m/<param>`, `optim.<key>.v/<param>`, metadata `optim.<key>/step`.
   */
  trainers?: Readonly<Record<string, Trainer>>;
  /** An EMA of the weights: tensors `ema/<param>`, metadata `ema/steps`. */
  ema?: Ema;
  /** Named generators whose states are saved (the ParamSet's is always saved as "params"). */
  rngs?: Readonly<Record<string, Rng>>;
  /** Free-form strings (run name, config hash...). */
  metadata?: Readonly<Record<string, string>>;
}

const FORMAT = 'evovla.nn.checkpoint/1';

/** (prefix, trainer) pairs: the single trainer is "optim", named ones "optim.<key>". */
function optimizers(c: CheckpointContents): [string, Trainer][] {
  const out: [string, Trainer][] = c.trainer ? [['optim', c.trainer]] : [];
  for (const [key, t] of Object.entries(c.trainers ?? {})) {
    if (!/^[A-Za-z0-9_-]+$/.test(key)) throw new Error(`checkpoint: trainer key ${JSON.stringify(key)} must be letters, digits, _ or -`);
    out.push([`optim.${key}`, t]);
  }
  return out;
}

/** Writes a checkpoint atomically (temp file + rename). Returns its size in bytes. */
export function saveCheckpoint(path: string, c: CheckpointContents): number {
  const tensors = new Map<string, StoredTensor>();
  for (const p of c.params.list()) tensors.set(p.name, { dtype: 'F32', shape: [...p.shape], data: p.data });
  const metadata: Record<string, string> = { ...c.metadata, format: FORMAT, 'rng/params': JSON.stringify(c.params.rng.getState()) };
  for (const [name, rng] of Object.entries(c.rngs ?? {})) metadata[`rng/${name}`] = JSON.stringify(rng.getState());
  for (const [prefix, trainer] of optimizers(c)) {
    const state = trainer.optimizerState();
    for (const slot of trainer.layout.trainable) {
      tensors.set(`${prefix}.m/${slot.name}`, { dtype: 'F32', shape: [...slot.shape], data: state.m.subarray(slot.offset, slot.offset + slot.size) });
      tensors.set(`${prefix}.v/${slot.name}`, { dtype: 'F32', shape: [...slot.shape], data: state.v.subarray(slot.offset, slot.offset + slot.size) });
    }
    metadata[`${prefix}/step`] = String(state.step);
    metadata[`${prefix}/lr`] = String(trainer.learningRate);
  }
  if (c.ema) {
    const { steps, shadow } = c.ema.state();
    for (const [name, data] of shadow) tensors.set(`ema/${name}`, { dtype: 'F32', shape: [...c.params.get(name).shape], data });
    metadata['ema/steps'] = String(steps);
  }
  const bytes = encodeSafetensors(tensors, metadata);
  writeFileAtomic(path, bytes);
  return bytes.length;
}

/**
 * Restores a checkpoint into `params` (and the trainers, EMA and RNGs when given). Every expected
 * tensor must be present with the right shape; all differences are listed in one error, and
 * nothing is changed unless everything matches.
 */
export function loadCheckpoint(path: string, c: CheckpointContents): { metadata: Record<string, string>; step: number | null } {
  const { tensors, metadata } = decodeSafetensors(readFileSync(path), path);
  if (metadata.format !== FORMAT) throw new Error(`${path}: format is ${JSON.stringify(metadata.format)}, expected ${JSON.stringify(FORMAT)}`);
  const expected = new Map<string, readonly number[]>();
  for (const p of c.params.list()) expected.set(p.name, p.shape);
  const opts = optimizers(c);
  for (const [prefix, trainer] of opts) {
    for (const s of trainer.layout.trainable) {
      expected.set(`${prefix}.m/${s.name}`, s.shape);
      expected.set(`${prefix}.v/${s.name}`, s.shape);
    }
  }
  if (c.ema) for (const name of c.ema.shadow.keys()) expected.set(`ema/${name}`, c.params.get(name).shape);
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) problems.push(`missing ${name} [${shape.join(',')}]`);
    else if (t.dtype !== 'F32') problems.push(`${name} is ${t.dtype}, expected F32`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name} has shape [${t.shape.join(',')}], the model has [${shape.join(',')}]`);
    }
  }
  for (const name of tensors.keys()) {
    // Optimizer and EMA state in the file are fine to ignore when not asked for (e.g. inference).
    if (expected.has(name)) continue;
    if (name.startsWith('optim.') && opts.length === 0) continue;
    if (name.startsWith('ema/') && !c.ema) continue;
    problems.push(`unexpected ${name} (not in the model)`);
  }
  const rngStates: [Rng, number[]][] = [];
  const wanted: [string, Rng][] = [['params', c.params.rng], ...Object.entries(c.rngs ?? {})];
  for (const [name, rng] of wanted) {
    const raw = metadata[`rng/${name}`];
    if (raw === undefined) problems.push(`missing RNG state rng/${name}`);
    else rngStates.push([rng, JSON.parse(raw) as number[]]);
  }
  const stepOf = (prefix: string): number | null => (metadata[`${prefix}/step`] === undefined ? null : Number(metadata[`${prefix}/step`]));
  for (const [prefix] of opts) if (stepOf(prefix) === null) problems.push(`missing optimizer step (${prefix}/step)`);
  if (c.ema && metadata['ema/steps'] === undefined) problems.push('missing EMA step count (ema/steps)');
  if (problems.length > 0) throw new Error(`${path} does not match the model:\n  ${problems.join('\n  ')}`);

  for (const p of c.params.list()) p.data = tensors.get(p.name)!.data as Float32Array;
  for (const [rng, state] of rngStates) rng.setState(state);
  for (const [prefix, trainer] of opts) {
    const n = trainer.layout.flatSize;
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    for (const s of trainer.layout.trainable) {
      m.set(tensors.get(`${prefix}.m/${s.name}`)!.data as Float32Array, s.offset);
      v.set(tensors.get(`${prefix}.v/${s.name}`)!.data as Float32Array, s.offset);
    }
    trainer.setOptimizerState({ step: stepOf(prefix)!, m, v });
    if (metadata[`${prefix}/lr`] !== undefined) trainer.learningRate = Number(metadata[`${prefix}/lr`]);
  }
  if (c.ema) {
    const shadow = new Map<string, Float32Array>();
    for (const name of c.ema.shadow.keys()) shadow.set(name, tensors.get(`ema/${name}`)!.data as Float32Array);
    c.ema.setState({ steps: Number(metadata['ema/steps']), shadow });
  }
  return { metadata, step: stepOf('optim') ?? (opts.length > 0 ? stepOf(opts[0][0]) : null) };
}

/** What `loadWeights` did. */
export interface LoadedWeights {
  /** Parameters that got values. */
  loaded: string[];
  /** File tensors not used (only when `strict` is false). */
  unused: string[];
  /** Parameters left as they were (only when `strict` is false). */
  missing: string[];
}

/**
 * Loads pretrained weights from safetensors (a path or bytes; F32, F64, F16 or BF16, widened to
 * float32) into `params`. `rename` maps a file name to a parameter name (null skips the tensor),
 * e.g. `(n) => n.startsWith('vision.') ? 'trunk.' + n.slice(7) : null`. Strict (the default):
 * every parameter must be filled and every file tensor used; all problems are reported at once and
 * nothing changes unless all match. Shapes must match exactly (a weight [out, in] from PyTorch's
 * nn.Linear needs `transform` to become nn/'s [in, out]).
 */
export function loadWeights(
  source: string | Uint8Array,
  params: ParamSet,
  options: {
    rename?: (fileName: string) => string | null;
    strict?: boolean;
    /** Rewrites a tensor before the shape check (e.g. a transpose); gets the parameter name. */
    transform?: (paramName: string, data: Float32Array, shape: number[]) => { data: Float32Array; shape: number[] };
  } = {},
): LoadedWeights {
  const where = typeof source === 'string' ? source : 'weights';
  const { tensors } = decodeSafetensors(typeof source === 'string' ? readFileSync(source) : source, where);
  const strict = options.strict ?? true;
  const problems: string[] = [];
  const updates = new Map<string, Float32Array>();
  const unused: string[] = [];
  for (const [fileName, t] of tensors) {
    const name = options.rename ? options.rename(fileName) : fileName;
    if (name === null || !params.has(name)) {
      if (strict && name !== null) problems.push(`${fileName}${name !== fileName ? ` (as ${name})` : ''} matches no parameter`);
      unused.push(fileName);
      continue;
    }
    if (updates.has(name)) {
      problems.push(`two file tensors map to ${name}`);
      continue;
    }
    let data: Float32Array;
    try {
      data = toFloat32(t, fileName);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    let shape = t.shape;
    if (options.transform) ({ data, shape } = options.transform(name, data, shape));
    const p = params.get(name);
    if (shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i])) {
      problems.push(`${fileName} has shape [${shape.join(',')}], parameter ${name} is [${p.shape.join(',')}]`);
      continue;
    }
    updates.set(name, data === t.data ? (data as Float32Array).slice() : data);
  }
  const missing = params.list().filter((p) => !updates.has(p.name)).map((p) => p.name);
  if (strict && missing.length > 0) problems.push(`no values for ${missing.length} parameter(s): ${missing.slice(0, 12).join(', ')}${missing.length > 12 ? ', …' : ''}`);
  if (problems.length > 0) throw new Error(`${where}: cannot load the weights:\n  ${problems.join('\n  ')}`);
  for (const [name, data] of updates) params.get(name).data = data;
  return { loaded: [...updates.keys()], unused, missing };
}
