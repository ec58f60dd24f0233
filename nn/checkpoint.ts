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
import type { Trainer } from './trainer.ts';

/** One tensor of a safetensors file. */
export interface StoredTensor {
  dtype: 'F32' | 'F64' | 'I64';
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array;
}

const DTYPE_OF = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array } as const;

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
    if (!Ctor) throw new Error(`${source}: tensor ${name} has dtype ${dtype}; expected F32, F64 or I64`);
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
  /** Named generators whose states are saved (the ParamSet's is always saved as "params"). */
  rngs?: Readonly<Record<string, Rng>>;
  /** Free-form strings (run name, config hash...). */
  metadata?: Readonly<Record<string, string>>;
}

const FORMAT = 'evovla.nn.checkpoint/1';

/** Writes a checkpoint atomically (temp file + rename). Returns its size in bytes. */
export function saveCheckpoint(path: string, c: CheckpointContents): number {
  const tensors = new Map<string, StoredTensor>();
  for (const p of c.params.list()) tensors.set(p.name, { dtype: 'F32', shape: [...p.shape], data: p.data });
  const metadata: Record<string, string> = { ...c.metadata, format: FORMAT, 'rng/params': JSON.stringify(c.params.rng.getState()) };
  for (const [name, rng] of Object.entries(c.rngs ?? {})) metadata[`rng/${name}`] = JSON.stringify(rng.getState());
  if (c.trainer) {
    const state = c.trainer.optimizerState();
    for (const slot of c.trainer.layout.trainable) {
      tensors.set(`optim.m/${slot.name}`, { dtype: 'F32', shape: [...slot.shape], data: state.m.subarray(slot.offset, slot.offset + slot.size) });
      tensors.set(`optim.v/${slot.name}`, { dtype: 'F32', shape: [...slot.shape], data: state.v.subarray(slot.offset, slot.offset + slot.size) });
    }
    metadata['optim/step'] = String(state.step);
    metadata['optim/lr'] = String(c.trainer.learningRate);
  }
  const bytes = encodeSafetensors(tensors, metadata);
  writeFileAtomic(path, bytes);
  return bytes.length;
}

/**
 * Restores a checkpoint into `params` (and the trainer and RNGs when given). Every expected tensor
 * must be present with the right shape; all differences are listed in one error, and nothing is
 * changed unless everything matches.
 */
export function loadCheckpoint(path: string, c: CheckpointContents): { metadata: Record<string, string>; step: number | null } {
  const { tensors, metadata } = decodeSafetensors(readFileSync(path), path);
  if (metadata.format !== FORMAT) throw new Error(`${path}: format is ${JSON.stringify(metadata.format)}, expected ${JSON.stringify(FORMAT)}`);
  const expected = new Map<string, readonly number[]>();
  for (const p of c.params.list()) expected.set(p.name, p.shape);
  if (c.trainer) {
    for (const s of c.trainer.layout.trainable) {
      expected.set(`optim.m/${s.name}`, s.shape);
      expected.set(`optim.v/${s.name}`, s.shape);
    }
  }
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
    // Moments in the file are fine to ignore when no trainer is restored (loading for inference).
    if (!expected.has(name) && !(name.startsWith('optim.') && !c.trainer)) problems.push(`unexpected ${name} (not in the model)`);
  }
  const rngStates: [Rng, number[]][] = [];
  const wanted: [string, Rng][] = [['params', c.params.rng], ...Object.entries(c.rngs ?? {})];
  for (const [name, rng] of wanted) {
    const raw = metadata[`rng/${name}`];
    if (raw === undefined) problems.push(`missing RNG state rng/${name}`);
    else rngStates.push([rng, JSON.parse(raw) as number[]]);
  }
  const step = metadata['optim/step'] === undefined ? null : Number(metadata['optim/step']);
  if (c.trainer && step === null) problems.push('missing optimizer step (optim/step)');
  if (problems.length > 0) throw new Error(`${path} does not match the model:\n  ${problems.join('\n  ')}`);

  for (const p of c.params.list()) p.data = tensors.get(p.name)!.data as Float32Array;
  for (const [rng, state] of rngStates) rng.setState(state);
  if (c.trainer) {
    const n = c.trainer.layout.flatSize;
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    for (const s of c.trainer.layout.trainable) {
      m.set(tensors.get(`optim.m/${s.name}`)!.data as Float32Array, s.offset);
      v.set(tensors.get(`optim.v/${s.name}`)!.data as Float32Array, s.offset);
    }
    c.trainer.setOptimizerState({ step: step!, m, v });
    if (metadata['optim/lr'] !== undefined) c.trainer.learningRate = Number(metadata['optim/lr']);
  }
  return { metadata, step };
}
