/**
 * A small ONNX policy that follows the deploy contract (robot/policies/onnx.ts), for the latency
 * benchmark, tests and trying the ONNX path before a trained VLA exists: a residual MLP,
 * action = proprio + 0.05 * tanh(MLP(proprio)), so its targets stay near the current pose.
 */
import { MLP } from '../../nn/layers.ts';
import { exportInference, writeFileAtomic } from '../../nn/model.ts';
import { abs, add, log, mul, neg, reduceMean, reshape, sqrt, tanh } from '../../nn/ops.ts';
import { ParamSet } from '../../nn/params.ts';
import { robotSpecFor } from '../spec.ts';

export interface TinyPolicyOptions {
  seed?: number;
  /** Hidden layer widths (default [64, 64]). */
  hidden?: number[];
  /** Override the recorded joint names (to build a mismatched policy in tests). */
  jointNames?: string[];
  /**
   * Add a camera input `image_<name>` float32 [B, 3, height, width]; the action then also moves by
   * 0.01 x the image's mean brightness (so tests can see the image reach the policy).
   */
  camera?: { name: string; width: number; height: number };
  /** Extra or replacement metadata entries. */
  metadata?: Record<string, string>;
  /**
   * A broken policy for fault tests: 'always' outputs a non-finite action for every input (so the
   * trial inference at load sees it); 'off-zero' is finite for an all-zero proprio (it passes the
   * trial) and NaN for any real robot pose.
   */
  nonFinite?: 'always' | 'off-zero';
}

/** Bytes of a self-contained .onnx residual MLP policy for robot `airbot_play`. */
export function tinyPolicyBytes(opts: TinyPolicyOptions = {}): Uint8Array {
  const params = new ParamSet(opts.seed ?? 1);
  const net = new MLP(params, 'policy', [7, ...(opts.hidden ?? [64, 64]), 7], 'relu');
  const spec = robotSpecFor('airbot_play');
  const metadata: Record<string, string> = {
    'evovla.joint_names': (opts.jointNames ?? spec.jointNames).join(','),
    'evovla.joint_limits': JSON.stringify(spec.limits.map((l) => [l.lower, l.upper, l.velocity])),
    'evovla.action_mode': 'joint',
    ...(opts.camera ? { 'evovla.cameras': JSON.stringify([opts.camera]) } : {}),
    ...opts.metadata,
  };
  return exportInference(
    {
      params,
      name: 'evovla_tiny_deploy_policy',
      forward: (g) => {
        const proprio = g.input('proprio', ['B', 7]);
        let action = add(proprio, mul(tanh(net.apply(proprio)), 0.05));
        const cam = opts.camera;
        if (cam) {
          const image = g.input(`image_${cam.name}`, ['B', 3, cam.height, cam.width]);
          action = add(action, mul(reshape(reduceMean(image, [1, 2, 3], true), [-1, 1]), 0.01));
        }
        // log(-|p|) is -Inf at 0 and NaN elsewhere; sqrt(-|p|) is 0 at 0 and NaN elsewhere.
        if (opts.nonFinite === 'always') action = add(action, log(neg(abs(proprio))));
        if (opts.nonFinite === 'off-zero') action = add(action, sqrt(neg(abs(proprio))));
        return { action };
      },
    },
    metadata,
  );
}

/** Write the tiny policy to `path` atomically. */
export function writeTinyPolicy(path: string, opts: TinyPolicyOptions = {}): void {
  writeFileAtomic(path, tinyPolicyBytes(opts));
}
