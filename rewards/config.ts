/**
 * Reward configuration: the scales of the named reward terms and rho, and the parsing function the
 * reward modules share (zod at the boundary, errors that name the key path, then frozen).
 */
import { z } from 'zod';
import { ConfigError, describeConfigIssue } from '../sim/config.ts';

const finite = z.number().refine(Number.isFinite, 'expected a finite number');

/** Scales of the four EvoVLA terms and the weight rho of the intrinsic part. */
export const rewardConfigSchema = z.strictObject({
  /** Weight of the intrinsic part: r = ext + rho (stage + cur + prog). EvoVLA: 0.6. */
  rho: z.number().min(0).max(1).default(0.6),
  /** Scale of each unscaled term before it enters the sum (1 = as EvoVLA). */
  scales: z
    .strictObject({
      ext: finite.default(1),
      stage: finite.default(1),
      cur: finite.default(1),
      prog: finite.default(1),
    })
    .prefault({}),
});

/** Parsed reward configuration. */
export type RewardConfig = z.output<typeof rewardConfigSchema>;

/**
 * Validates `input` against `schema` and freezes the result. A bad field throws a `ConfigError`
 * naming `source`, the key path (e.g. `gate.theta`) and what was expected, with the value given.
 */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, source: string): Readonly<z.output<S>> {
  const r = schema.safeParse(input ?? {});
  if (!r.success) {
    const { key, message } = describeConfigIssue(schema, r.error.issues[0], input);
    throw new ConfigError(source, key, message);
  }
  return deepFreeze(r.data);
}

function deepFreeze<T>(x: T): T {
  if (x && typeof x === 'object' && !ArrayBuffer.isView(x)) {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}

/** Validates a reward config (defaults: rho 0.6, every scale 1). */
export function parseRewardConfig(input: unknown, source = 'reward config'): Readonly<RewardConfig> {
  return parseConfig(rewardConfigSchema, input, source);
}
