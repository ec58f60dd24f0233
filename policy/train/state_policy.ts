/**
 * A state-based actor-critic for PPO: features are read from the simulator's ground truth
 * (proprioception + object poses) instead of a vision trunk. It is the stand-in PPO is tested
 * with, and a privileged-state baseline; the VLA path replaces the encoder by trunk features and
 * the MLPs by the VLA's heads.
 */
import { Linear, MLP } from '../../nn/layers.ts';
import { init, ParamSet } from '../../nn/params.ts';
import * as op from '../../nn/ops.ts';
import type { StepInfo } from '../../sim/types.ts';
import { AC_OUTPUTS, type ActorCritic, type EncodeItem, type ObservationEncoder } from './ppo.ts';

/** Options of mlpActorCritic. */
export interface MlpActorCriticOptions {
  featureSize: number;
  actionSize: number;
  /** Hidden widths of each of the three MLPs (actor, extrinsic critic, intrinsic critic). */
  hidden?: number[];
  /** Initial log standard deviation of every action dimension. */
  initLogStd?: number;
  /** log_std is clipped to [min, max] in the forward pass (a policy can neither freeze nor explode). */
  logStdBounds?: [number, number];
  seed?: number;
}

/**
 * Actor and two critics as separate tanh MLPs over `features` [B, F] (CleanRL's Agent), the actor's
 * last layer initialised small so the first policy is near the action map's centre.
 */
export function mlpActorCritic(o: MlpActorCriticOptions): ActorCritic {
  const hidden = o.hidden ?? [64, 64];
  const [lo, hi] = o.logStdBounds ?? [-5, 1];
  const params = new ParamSet(o.seed ?? 0);
  const trunk = (name: string): MLP => new MLP(params, name, [o.featureSize, ...hidden], 'tanh', 'tanh');
  const actorBody = trunk('head.actor');
  const actorOut = new Linear(params, 'head.actor.out', hidden[hidden.length - 1], o.actionSize, { weightInit: init.normal(0.01), biasInit: init.zeros() });
  const logStd = params.add('head.log_std', [o.actionSize], init.constant(o.initLogStd ?? -0.5), { decay: false });
  const critics = (['ext', 'int'] as const).map((k) => ({
    body: trunk(`head.value_${k}`),
    out: new Linear(params, `head.value_${k}.out`, hidden[hidden.length - 1], 1, { weightInit: init.normal(1 / Math.sqrt(hidden[hidden.length - 1])), biasInit: init.zeros() }),
  }));
  return {
    actionSize: o.actionSize,
    inputShapes: { features: [o.featureSize] },
    model: {
      params,
      name: 'state_actor_critic',
      forward: (g) => {
        const x = g.input('features', ['B', o.featureSize]);
        const value = (i: number): ReturnType<typeof op.reshape> => op.reshape(critics[i].out.apply(critics[i].body.apply(x)), [-1]);
        return {
          [AC_OUTPUTS.mean]: actorOut.apply(actorBody.apply(x)),
          [AC_OUTPUTS.logStd]: op.clip(g.param(logStd), lo, hi),
          [AC_OUTPUTS.valueExt]: value(0),
          [AC_OUTPUTS.valueInt]: value(1),
        };
      },
    },
  };
}

/** Dynamic objects of a state, in name order (the feature layout). */
function dynamicObjects(info: StepInfo): string[] {
  return Object.keys(info.state.objectVel).sort();
}

/** Size of stateFeatures for a task with `objects` dynamic objects. */
export function stateFeatureSize(objects: number): number {
  return 7 + 3 + objects * 10;
}

/**
 * Features from ground truth: proprio (6 joints + gripper, gripper scaled to ~0..1), tool position,
 * and per dynamic object (by name) its position relative to the tool and its quaternion.
 */
export function stateFeatures(info: StepInfo, out: Float32Array, offset = 0): void {
  const s = info.state;
  let k = offset;
  for (const q of s.q) out[k++] = q;
  out[k++] = s.gripper * 25;
  for (const p of s.ee.p) out[k++] = p;
  for (const name of dynamicObjects(info)) {
    const pose = s.objects[name];
    for (let j = 0; j < 3; j++) out[k++] = (pose.p[j] - s.ee.p[j]) * 5;
    for (const q of pose.q) out[k++] = q;
  }
}

/** An ObservationEncoder over stateFeatures (stateless: every kind of item is encoded the same). */
export function stateEncoder(objects: number): ObservationEncoder {
  const size = stateFeatureSize(objects);
  return {
    encode: async (items: readonly EncodeItem[]) => {
      const features = new Float32Array(items.length * size);
      items.forEach((it, r) => {
        const n = dynamicObjects(it.info).length;
        if (n !== objects) throw new Error(`stateEncoder: env ${it.env} has ${n} dynamic objects, the encoder was made for ${objects}`);
        stateFeatures(it.info, features, r * size);
      });
      return { features };
    },
  };
}
