/**
 * An ONNX policy for deployment, run by onnxruntime-node through nn/runtime.ts (the only module
 * that imports it). The file contract, checked at load with errors that say what was found:
 *
 *  inputs   proprio         float32 [B, 7]        6 joint positions (rad) + gripper opening (m)
 *           image_<camera>  float32 [B, 3, H, W]  optional, RGB in 0..1, one per camera in evovla.cameras
 *           instruction     int64 [B, L]          optional, the observation's instruction as token ids
 *                                                 (needs evovla.tokenizer: nn/tokenizer.ts JSON)
 *           memory, memory_mask  float32 [B, M, F], [B, M]   optional, fed empty (mask 0): deploy
 *                                                 keeps no memory bank
 *  outputs  action          float32 [B, 7]        6 joint-position targets (rad) + gripper (m);
 *                                                 [B, K, 7] (an action chunk) uses its first step
 *  metadata evovla.joint_names   "joint1,...,joint6"   required while safety.specCheck is on
 *           evovla.joint_limits  JSON [[lower, upper, velocity], ...]   optional, checked when present
 *           evovla.cameras       JSON [{"name", "width", "height"}]     optional
 *           evovla.action_mode   "joint" (the only mode a robot is driven in)
 *           evovla.tokenizer     JSON {words, buckets, maxLength}           required with an instruction input
 * Other outputs (action_log_std, value_ext, value_int, features of a VLA) are allowed and not read.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createSession, type HostTensor, type Session } from '../../nn/runtime.ts';
import { Tokenizer } from '../../nn/tokenizer.ts';
import type { Observation } from '../../sim/types.ts';
import type { CameraSpec, JointLimits } from '../types.ts';
import { ELEM_TYPE_NAMES, readOnnxInfo } from './onnx_meta.ts';
import type { DeployPolicy } from './types.ts';

/** The file does not follow the contract above; the message says how. */
export class PolicyFileError extends Error {
  override name = 'PolicyFileError';
}

export interface OnnxPolicyOptions {
  /** Require evovla.joint_names metadata (true while safety.specCheck is on). */
  requireJointNames?: boolean;
  /** Intra-op threads (default 1: one small model per control tick gains nothing from more). */
  threads?: number;
}

function parseJson<T>(file: string, key: string, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new PolicyFileError(`${file}: metadata ${key} is not valid JSON: ${text.slice(0, 80)}`);
  }
}

/** Load and check an ONNX policy file; one trial inference on zeros proves the output shape. */
export async function loadOnnxPolicy(path: string, opts: OnnxPolicyOptions = {}): Promise<DeployPolicy> {
  const file = basename(path);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new PolicyFileError(`cannot read policy '${path}': ${(err as Error).message}`);
  }
  let info;
  try {
    info = readOnnxInfo(bytes);
  } catch (err) {
    throw new PolicyFileError(`${file}: ${(err as Error).message}`);
  }
  const meta = info.metadata;
  const mode = meta['evovla.action_mode'] ?? 'joint';
  if (mode !== 'joint') throw new PolicyFileError(`${file}: evovla.action_mode is '${mode}'; deployment drives joint-position targets ('joint')`);
  const jointNames = meta['evovla.joint_names']?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!jointNames && (opts.requireJointNames ?? true)) {
    throw new PolicyFileError(`${file}: no evovla.joint_names metadata, so the robot cannot be checked against it; re-export with metadata {"evovla.joint_names": "joint1,...,joint6"} or set safety.specCheck.enabled: false`);
  }
  const rawLimits = parseJson<number[][]>(file, 'evovla.joint_limits', meta['evovla.joint_limits']);
  const limits: JointLimits[] | undefined = rawLimits?.map((l) => ({ lower: l[0], upper: l[1], velocity: l[2], acceleration: Number.NaN }));
  const cameras = parseJson<CameraSpec[]>(file, 'evovla.cameras', meta['evovla.cameras']) ?? [];

  const byName = new Map(info.inputs.map((v) => [v.name, v]));
  const proprio = byName.get('proprio');
  if (!proprio) throw new PolicyFileError(`${file}: no input named 'proprio' (inputs: ${info.inputs.map((v) => v.name).join(', ')}); expected proprio float32 [B, 7]`);
  const typeName = (t: number) => ELEM_TYPE_NAMES[t] ?? `type ${t}`;
  if (proprio.elemType !== 1 || proprio.shape.length !== 2 || (typeof proprio.shape[1] === 'number' && proprio.shape[1] !== 7)) {
    throw new PolicyFileError(`${file}: input proprio is ${typeName(proprio.elemType)} [${proprio.shape.join(', ')}], expected float32 [B, 7]`);
  }
  const imageInputs = cameras.map((c) => `image_${c.name}`);
  const optional = ['instruction', 'memory', 'memory_mask'];
  const unknown = info.inputs.map((v) => v.name).filter((n) => n !== 'proprio' && !imageInputs.includes(n) && !optional.includes(n));
  if (unknown.length) {
    throw new PolicyFileError(`${file}: inputs ${unknown.join(', ')} are not part of the deploy contract (proprio; image_<camera> for cameras listed in evovla.cameras; instruction; memory + memory_mask)`);
  }
  // Instruction tokens: the tokenizer the model was trained with travels in its metadata.
  const instruction = byName.get('instruction');
  let tokenizer: Tokenizer | null = null;
  let instructionLength = 0;
  if (instruction) {
    const L = instruction.shape[1];
    if (instruction.elemType !== 7 || instruction.shape.length !== 2 || typeof L !== 'number') {
      throw new PolicyFileError(`${file}: input instruction is ${typeName(instruction.elemType)} [${instruction.shape.join(', ')}], expected int64 [B, L] with a fixed L`);
    }
    const spec = parseJson<ConstructorParameters<typeof Tokenizer>[0]>(file, 'evovla.tokenizer', meta['evovla.tokenizer']);
    if (!spec) throw new PolicyFileError(`${file}: input instruction needs metadata evovla.tokenizer (the vocabulary the model was trained with)`);
    try {
      tokenizer = new Tokenizer({ ...spec, maxLength: L });
    } catch (err) {
      throw new PolicyFileError(`${file}: metadata evovla.tokenizer: ${(err as Error).message}`);
    }
    instructionLength = L;
  }
  const memory = byName.get('memory');
  let memoryShape: [number, number] | null = null;
  if (memory || byName.has('memory_mask')) {
    const [, m, f] = memory?.shape ?? [];
    if (!memory || !byName.has('memory_mask') || typeof m !== 'number' || typeof f !== 'number') {
      throw new PolicyFileError(`${file}: memory inputs must come as a pair, memory float32 [B, M, F] and memory_mask float32 [B, M] with fixed M and F`);
    }
    memoryShape = [m, f];
  }
  for (const c of cameras) {
    const v = byName.get(`image_${c.name}`);
    if (!v) throw new PolicyFileError(`${file}: evovla.cameras lists '${c.name}' but there is no input image_${c.name}`);
    const [, ch, h, w] = v.shape;
    if (v.elemType !== 1 || v.shape.length !== 4 || ch !== 3 || (typeof h === 'number' && h !== c.height) || (typeof w === 'number' && w !== c.width)) {
      throw new PolicyFileError(`${file}: input image_${c.name} is ${typeName(v.elemType)} [${v.shape.join(', ')}], expected float32 [B, 3, ${c.height}, ${c.width}]`);
    }
  }
  const action = info.outputs.find((v) => v.name === 'action');
  if (!action) throw new PolicyFileError(`${file}: no output named 'action' (outputs: ${info.outputs.map((v) => v.name).join(', ')}); expected action float32 [B, 7]`);

  const session: Session = await createSession(bytes, { executionProvider: 'cpu', threads: opts.threads ?? 1 });
  const feeds = (proprioData: Float32Array, images?: Observation['images'], text = '') => {
    const f: Record<string, HostTensor> = { proprio: { data: proprioData, shape: [1, 7] } };
    if (tokenizer) f.instruction = { data: tokenizer.encode([text]).ids, shape: [1, instructionLength] };
    if (memoryShape) {
      f.memory = { data: new Float32Array(memoryShape[0] * memoryShape[1]), shape: [1, ...memoryShape] };
      f.memory_mask = { data: new Float32Array(memoryShape[0]), shape: [1, memoryShape[0]] };
    }
    for (const c of cameras) {
      const frame = images?.[c.name];
      if (!frame) throw new Error(`policy ${file} needs camera '${c.name}' but the observation has none`);
      if (frame.width !== c.width || frame.height !== c.height) throw new Error(`camera '${c.name}' frame is ${frame.width}x${frame.height}, policy expects ${c.width}x${c.height}`);
      const plane = c.width * c.height;
      const data = new Float32Array(3 * plane);
      for (let p = 0; p < plane; p++) for (let k = 0; k < 3; k++) data[k * plane + p] = frame.rgb[p * 3 + k] / 255;
      f[`image_${c.name}`] = { data, shape: [1, 3, c.height, c.width] };
    }
    return f;
  };
  const pick = (out: Record<string, { data: ArrayLike<number> | ArrayLike<bigint>; shape: readonly number[] }>): Float32Array => {
    const a = out.action;
    const last = a.shape.at(-1);
    if (!(a.data instanceof Float32Array) || last !== 7 || (a.shape.length !== 2 && a.shape.length !== 3)) {
      throw new PolicyFileError(`${file}: output action is ${a.data.constructor.name} [${a.shape.join(', ')}], expected float32 [B, 7] or [B, K, 7]`);
    }
    return a.data.slice(0, 7);
  };
  // Trial run on zeros: catches shape errors at load, not on the robot's first tick.
  const zeroImages = Object.fromEntries(cameras.map((c) => [c.name, { width: c.width, height: c.height, rgb: new Uint8Array(c.width * c.height * 3) }]));
  try {
    const first = pick(await session.run(feeds(new Float32Array(7), zeroImages), ['action']));
    // A policy that answers NaN/Inf before it ever sees the robot would only be refused tick after
    // tick on it: refuse the file now.
    const bad = Array.from(first).map((v, i) => [v, i] as const).filter(([v]) => !Number.isFinite(v));
    if (bad.length) {
      const names = ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6', 'gripper'];
      throw new PolicyFileError(`${file}: trial inference on a zero observation gave a non-finite action (${bad.map(([v, i]) => `${names[i]}=${v}`).join(', ')}); refusing this policy`);
    }
  } catch (err) {
    await session.dispose();
    if (err instanceof PolicyFileError) throw err;
    throw new PolicyFileError(`${file}: trial inference failed: ${(err as Error).message}`);
  }
  const proprioBuf = new Float32Array(7);
  return {
    name: file,
    spec: { jointNames: jointNames ?? [], limits, cameras },
    async act(obs: Observation) {
      proprioBuf.set(obs.proprio.subarray(0, 7));
      return pick(await session.run(feeds(proprioBuf, obs.images, obs.instruction), ['action']));
    },
    close: () => session.dispose(),
  };
}
