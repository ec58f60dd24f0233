/**
 * The rollout policy a worker runs: act on a batch of observations with a given set of weights.
 * Workers code against `RolloutPolicy` and get one from a `PolicyLoader` each time the weights
 * change; the default loader runs an ONNX policy file (docs/deploy.md's contract) through
 * robot/policies/onnx.ts, the same loader deployment uses.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOnnxPolicy } from '../robot/policies/onnx.ts';
import type { Observation } from '../sim/types.ts';

/** A policy that acts on every env of a VecEnv at once. */
export interface RolloutPolicy {
  /** One 7-vector action per observation (joint targets + gripper, the env's action). */
  act(obs: readonly Observation[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** Builds a RolloutPolicy from the weights stored for a policy version. */
export type PolicyLoader = (weights: Uint8Array, version: number) => Promise<RolloutPolicy>;

/**
 * Loads ONNX policy bytes (deploy contract: `proprio` [B,7] (+ `image_<camera>`) -> `action`).
 * The loader reads files, so the bytes go through a private temp file removed right after.
 */
export const onnxPolicyLoader: PolicyLoader = async (weights, version) => {
  const dir = mkdtempSync(join(tmpdir(), 'evovla-policy-'));
  const file = join(dir, `policy-v${version}.onnx`);
  try {
    writeFileSync(file, weights);
    const p = await loadOnnxPolicy(file, { requireJointNames: false, threads: 1 });
    return {
      async act(obs) {
        const out: Float32Array[] = [];
        for (const o of obs) out.push(Float32Array.from(await p.act(o)));
        return out;
      },
      close: () => p.close(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
