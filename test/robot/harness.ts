/**
 * Test harness: the sim twin on a fake clock, wrapped in the safety layer, with a scripted policy
 * whose output each test controls, and an MCAP command log in a temp folder.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeClock } from '../../robot/clock.ts';
import { type DeployConfig, parseDeployConfig } from '../../robot/config.ts';
import { DeployLoop } from '../../robot/deploy.ts';
import { CommandLog, readCommandLog } from '../../robot/log/command_log.ts';
import type { DeployPolicy } from '../../robot/policies/types.ts';
import type { SafeRobot } from '../../robot/safe_robot.ts';
import type { Decision } from '../../robot/safety/layer.ts';
import { startSafeRobot } from '../../robot/session.ts';
import { SimTwin } from '../../robot/sim_twin.ts';
import { baseFrameFk, robotSpecFor } from '../../robot/spec.ts';
import { createEnv } from '../../sim/env.ts';
import type { Observation } from '../../sim/types.ts';
import { getTask } from '../../tasks/index.ts';
import { scratchDir } from '../tmp.ts';

/** A policy whose answer is whatever `next` returns (or a promise that never settles). */
export class ScriptedPolicy implements DeployPolicy {
  readonly name = 'scripted';
  readonly spec = (() => {
    const s = robotSpecFor('airbot_play');
    return { jointNames: s.jointNames, limits: s.limits, cameras: [] };
  })();
  calls = 0;
  hang = false;
  next: (obs: Observation) => ArrayLike<number> = (obs) => obs.proprio;
  act(obs: Observation): Promise<ArrayLike<number>> {
    this.calls++;
    if (this.hang) return new Promise(() => {});
    return Promise.resolve(this.next(obs));
  }
  async close(): Promise<void> {}
}

export interface Rig {
  clock: FakeClock;
  twin: SimTwin;
  safe: SafeRobot;
  policy: ScriptedPolicy;
  loop: DeployLoop;
  log: CommandLog;
  decisions: Decision[];
  config: DeployConfig;
  /** Run `n` ticks, advancing the fake clock one control period after each. */
  ticks(n: number): Promise<void>;
  /** Close the log and read it back. */
  readLog(): Promise<ReturnType<typeof readCommandLog>>;
}

export const DT = 1 / 60;

export async function makeRig(configOverrides: Record<string, unknown> = {}, opts: { jointNames?: string[] } = {}): Promise<Rig> {
  const clock = new FakeClock(1000);
  const config = parseDeployConfig(configOverrides);
  const env = await createEnv(getTask('blocks'));
  const twin = new SimTwin({ env, clock, seed: 3 });
  if (opts.jointNames) twin.inject({ jointNames: opts.jointNames });
  const policy = new ScriptedPolicy();
  const safe = await startSafeRobot({ robot: twin, policySpec: policy.spec, config, clock, fk: baseFrameFk('airbot_play') });
  const dir = scratchDir('evovla-deploy-');
  const path = join(dir, 'commands.mcap');
  const spec = twin.spec();
  const log = await CommandLog.create(path, { mapping: { rosNames: spec.jointNames, gripperName: 'gripper', gripperScale: 1 }, periodS: DT });
  const decisions: Decision[] = [];
  safe.onDecision((d, obs) => {
    decisions.push(d);
    log.record(d, obs);
  });
  const loop = new DeployLoop({ robot: safe, policy, clock, controlHz: 60, instruction: 'test' });
  return {
    clock,
    twin,
    safe,
    policy,
    loop,
    log,
    decisions,
    config,
    async ticks(n: number) {
      for (let i = 0; i < n; i++) {
        await loop.tick();
        clock.advance(DT);
      }
    },
    async readLog() {
      await log.close();
      return readCommandLog(readFileSync(path));
    },
  };
}
