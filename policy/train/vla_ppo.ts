/**
 * The VLA as PPO sees it (EvoVLA's recipe): the behaviour-cloned trunk is frozen and run once per
 * observation to give features; the heads (action mean, log-std, two values) and the memory gate
 * are what PPO trains, on those cached features, so an update costs an MLP's time.
 *
 *   observation --trunk (frozen, ModelRunner)--> features x --memory fusion (trained)--> h --heads (trained)--> mean, log_std, V_ext, V_int
 *                                       |                       ^
 *                                       +--> key-frame bank ----+ (memory [M, F], memory_mask [M])
 *
 * The policy samples in the normalised action space of the BC demos (z-scores of the joint targets,
 * or of the joint steps from the current position with `model.actionFrame: delta`, and of the
 * gripper), and plays the first step of the predicted chunk every control step.
 */
import type { Tensor } from '../../nn/graph.ts';
import type { ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ModelRunner } from '../../nn/runner.ts';
import type { HostTensor } from '../../nn/runtime.ts';
import { relativePose, stageObject } from '../../rewards/poe/pose.ts';
import type { Task } from '../../sim/task.ts';
import { MemoryBank } from '../memory/bank.ts';
import { MemoryFusion } from '../memory/fusion.ts';
import { ACTION_DIM, VLA_IO, relativeDims, vlaInferenceModel, type Vla } from '../vla/model.ts';
import { AC_OUTPUTS, type ActionMap, type ActorCritic, type EncodeItem, type ObservationEncoder } from './ppo.ts';

/** Bounds of the policy's log-std in normalised action units (a policy can neither collapse nor explode). */
export const LOG_STD_BOUNDS: [number, number] = [-4, 0.5];

/** The trainable part: memory fusion (optional) + the VLA's heads over cached trunk features. */
export interface VlaPpoModel {
  actorCritic: ActorCritic;
  /** null when memory is off (the ablation). */
  fusion: MemoryFusion | null;
  memorySlots: number;
  /** The policy.onnx model: the contract's inputs -> action chunk, log-std, values, features (with fusion when on). */
  inference: ModelDefinition;
  /** env action = actionMean + actionStd * clip(a, -4, 4). */
  actionMap: ActionMap;
}

/**
 * Builds PPO's view of `vla`. With `memorySlots` > 0 it adds the gated memory fusion (parameters
 * `memory.*`, created in the VLA's ParamSet, so checkpoints and exports carry them).
 */
export function vlaPpoModel(vla: Vla, memorySlots: number): VlaPpoModel {
  const F = vla.config.width;
  if (vla.config.memorySlots !== 0) throw new Error(`PPO wires memory between trunk and heads; model.memorySlots must be 0 (got ${vla.config.memorySlots})`);
  if (vla.params.has('memory.gate.weight')) throw new Error('vlaPpoModel: the VLA already has memory.* parameters; build the PPO model once per VLA');
  const fusion = memorySlots > 0 ? new MemoryFusion(vla.params, F) : null;
  const fuse = (g: Parameters<ModelDefinition['forward']>[0], x: Tensor): Tensor => {
    if (!fusion) return x;
    return fusion.apply(x, g.input(VLA_IO.memory, ['B', memorySlots, F]), g.input(VLA_IO.memoryMask, ['B', memorySlots]));
  };
  const inputShapes: Record<string, number[]> = { features: [F] };
  if (fusion) {
    inputShapes[VLA_IO.memory] = [memorySlots, F];
    inputShapes[VLA_IO.memoryMask] = [memorySlots];
  }
  const actorCritic: ActorCritic = {
    actionSize: ACTION_DIM,
    inputShapes,
    model: {
      params: vla.params,
      name: 'evovla_ppo_heads',
      forward: (g) => {
        const h = vla.head.apply(fuse(g, g.input(VLA_IO.features, ['B', F])));
        // The first step of the chunk, normalised: what is played this control step.
        const first = op.reshape(op.slice(h.actionNorm, [0], [1], [1]), [0, ACTION_DIM]);
        return {
          [AC_OUTPUTS.mean]: first,
          [AC_OUTPUTS.logStd]: op.clip(g.param(vla.head.logStd), LOG_STD_BOUNDS[0], LOG_STD_BOUNDS[1]),
          [AC_OUTPUTS.valueExt]: h.valueExt,
          [AC_OUTPUTS.valueInt]: h.valueInt,
        };
      },
    },
  };
  const inference = vlaInferenceModel(vla.params, vla.trunk, vla.head, fuse);
  return { actorCritic, fusion, memorySlots, inference, actionMap: { center: vla.stats.actionMean, scale: vla.stats.actionStd, limit: 4, relative: relativeDims(vla.config.actionFrame) } };
}

/** Options of vlaEncoder. */
export interface VlaEncoderOptions {
  task: Task;
  numEnvs: number;
  threads: number;
  /** The key-frame bank (null: memory off). */
  bank: MemoryBank | null;
  /** The SAR stage score u of env `env`'s latest observation (0 when SAR is off), for the bank. */
  stageScore: (env: number) => number;
  /** The SAR stage env `env` is in (the object whose pose the bank watches), or null to use 0. */
  sarStage: (env: number) => number;
}

/** Encodes observations with the frozen trunk (batched) and keeps the memory bank. */
export interface VlaEncoder extends ObservationEncoder {
  dispose(): Promise<void>;
  /** Milliseconds spent in the trunk so far (for the throughput breakdown). */
  readonly trunkMs: number;
}

/** Images [n, 3, S, S] in 0..1 from RGB frames. */
export function imageBatch(frames: ReadonlyArray<{ width: number; height: number; rgb: Uint8Array }>, size: number, camera: string): Float32Array {
  const plane = size * size;
  const data = new Float32Array(frames.length * 3 * plane);
  frames.forEach((f, i) => {
    if (!f) throw new Error(`observation has no image from camera '${camera}'`);
    if (f.width !== size || f.height !== size) throw new Error(`camera '${camera}' frame is ${f.width}x${f.height}, the policy expects ${size}x${size}`);
    const base = i * 3 * plane;
    for (let p = 0; p < plane; p++) {
      data[base + p] = f.rgb[3 * p] / 255;
      data[base + plane + p] = f.rgb[3 * p + 1] / 255;
      data[base + 2 * plane + p] = f.rgb[3 * p + 2] / 255;
    }
  });
  return data;
}

/** The trunk as an ObservationEncoder: features [F] (+ memory [M, F], memory_mask [M] with a bank). */
export async function vlaEncoder(vla: Vla, o: VlaEncoderOptions): Promise<VlaEncoder> {
  const runner = await ModelRunner.create(vla.trunkModel, { threads: o.threads });
  const c = vla.config;
  const F = c.width;
  const ids = vla.tokenizer.encode([o.task.instruction]).ids;
  let trunkMs = 0;
  const pose = new Float32Array(6);
  return {
    get trunkMs() {
      return trunkMs;
    },
    dispose: () => runner.dispose(),
    encode: async (items: readonly EncodeItem[]): Promise<Record<string, Float32Array>> => {
      const n = items.length;
      const feeds: Record<string, HostTensor> = {};
      const proprio = new Float32Array(n * 7);
      items.forEach((it, i) => proprio.set(it.obs.proprio.subarray(0, 7), i * 7));
      feeds[VLA_IO.proprio] = { data: proprio, shape: [n, 7] };
      const instr = new BigInt64Array(n * c.maxTokens);
      for (let i = 0; i < n; i++) instr.set(ids, i * c.maxTokens);
      feeds[VLA_IO.instruction] = { data: instr, shape: [n, c.maxTokens] };
      for (const cam of c.cameras) {
        feeds[VLA_IO.image(cam)] = { data: imageBatch(items.map((it) => it.obs.images?.[cam]!), c.imageSize, cam), shape: [n, 3, c.imageSize, c.imageSize] };
      }
      const t0 = performance.now();
      const out = await runner.run(feeds, [VLA_IO.features]);
      trunkMs += performance.now() - t0;
      const features = out[VLA_IO.features].data as Float32Array;
      if (!o.bank) return { features };
      const bank = o.bank;
      items.forEach((it, i) => {
        if (it.kind === 'final') return;
        if (it.kind === 'reset') bank.reset(it.env);
        const object = stageObject(o.task.stages, o.sarStage(it.env));
        bank.observe(it.env, { step: it.info.state.step, features: features.subarray(i * F, (i + 1) * F), stageScore: o.stageScore(it.env), pose: relativePose(it.info.state, object, 1, pose) });
      });
      const b = bank.batch(items.map((it) => it.env));
      return { features, [VLA_IO.memory]: b.memory, [VLA_IO.memoryMask]: b.mask };
    },
  };
}
