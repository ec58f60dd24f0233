/**
 * Exploration robustness: random policies (uniform joint targets, random end-effector deltas, a
 * joint random walk) drive each Discoverse-L task for `--episodes` seeded episodes of `--steps`
 * control steps. Prints one JSON line: episodes, faults (episodes that ended with info.simFault,
 * a defect of the simulator), the largest joint speed over its limit, the largest finger excursion
 * outside its travel, physics steps per second, and stages a random policy completed (false
 * positives of the stage predicates; expect ~0).
 *   npm run bench:explore -- [--episodes 20] [--steps 300] [--tasks stack,jujube_cup,block_bridge]
 */
import * as os from 'node:os';
import { flag, intFlag } from './args.ts';
import { createEnv } from '../sim/env.ts';
import { RANDOM_POLICIES, randomPolicy, randomPolicyMode } from '../sim/explore.ts';
import { getTask } from '../tasks/index.ts';

const episodesPer = intFlag('episodes', 20);
const steps = intFlag('steps', 300);
const tasks = (flag('tasks') ?? 'stack,jujube_cup,block_bridge').split(',');

let episodes = 0;
let faults = 0;
let maxSpeedRatio = 0;
let maxFingerExcess = 0;
let maxJointExcess = 0;
let physicsSteps = 0;
let stageFalsePositives = 0;
const faultList: Array<{ task: string; policy: string; seed: number; step: number; simFault: string }> = [];
/** Every episode in which a random policy completed a stage: which stages, and at which control step each first held. */
const falsePositiveList: Array<{ task: string; policy: string; seed: number; stages: Array<{ stage: string; step: number }> }> = [];
const perCase: Array<{ task: string; policy: string; faults: number; maxJointSpeedRatio: number; stagesCompleted: number }> = [];
let wall = 0;
for (const id of tasks) {
  const task = getTask(id);
  for (const kind of RANDOM_POLICIES) {
    const env = await createEnv(task, { actionMode: randomPolicyMode(kind), maxSteps: steps });
    env.reset({ seed: 0 });
    const speed = env.robot.armJoints.map((n) => env.robot.joints.find((j) => j.name === n)!.limit!.velocity);
    const fingers = env.robot.fingerJoints.map((n) => env.robot.joints.find((j) => j.name === n)!.limit!);
    const arm = env.robot.armJoints.map((n) => env.robot.joints.find((j) => j.name === n)!.limit!);
    const c = { task: id, policy: kind, faults: 0, maxJointSpeedRatio: 0, stagesCompleted: 0 };
    for (let e = 0; e < episodesPer; e++) {
      const seed = 1000 * e + 17;
      let r = env.reset({ seed });
      const policy = randomPolicy(kind, env, seed + 1);
      const stage0 = r.info.stage;
      let maxStage = stage0;
      const reached: Array<{ stage: string; step: number }> = [];
      const t0 = performance.now();
      for (let t = 0; t < steps; t++) {
        const res = env.step(policy(r.info.state));
        r = { obs: res.obs, info: res.info };
        physicsSteps += env.config.physicsHz / env.config.controlHz;
        const s = res.info.state;
        s.qd.forEach((v, i) => (c.maxJointSpeedRatio = Math.max(c.maxJointSpeedRatio, Math.abs(v) / speed[i])));
        s.q.forEach((v, i) => (maxJointExcess = Math.max(maxJointExcess, arm[i].lower - v, v - arm[i].upper)));
        const fingerValues = (env as unknown as { ctrl: { finger: Float64Array } }).ctrl.finger;
        fingerValues.forEach((v, i) => (maxFingerExcess = Math.max(maxFingerExcess, fingers[i].lower - v, v - fingers[i].upper)));
        for (let k = maxStage; k < res.info.stage; k++) reached.push({ stage: task.stages[k].name, step: t });
        maxStage = Math.max(maxStage, res.info.stage);
        if (res.info.simFault) {
          c.faults++;
          faultList.push({ task: id, policy: kind, seed, step: t, simFault: res.info.simFault });
        }
        if (res.terminated || res.truncated) break;
      }
      wall += (performance.now() - t0) / 1000;
      c.stagesCompleted += maxStage - stage0;
      if (reached.length > 0) falsePositiveList.push({ task: id, policy: kind, seed, stages: reached });
      episodes++;
    }
    env.free();
    faults += c.faults;
    stageFalsePositives += c.stagesCompleted;
    maxSpeedRatio = Math.max(maxSpeedRatio, c.maxJointSpeedRatio);
    c.maxJointSpeedRatio = Number(c.maxJointSpeedRatio.toFixed(3));
    perCase.push(c);
  }
}
console.log(
  JSON.stringify({
    bench: 'explore',
    episodes,
    steps_per_episode: steps,
    faults,
    max_joint_speed_ratio: Number(maxSpeedRatio.toFixed(3)),
    max_joint_excess_rad: Number(maxJointExcess.toFixed(4)),
    max_finger_excess_mm: Number((maxFingerExcess * 1000).toFixed(2)),
    physics_steps_per_s: Math.round(physicsSteps / wall),
    stage_false_positives: stageFalsePositives,
    cases: perCase,
    fault_list: faultList.slice(0, 20),
    false_positive_list: falsePositiveList.slice(0, 20),
    node: process.version,
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  }),
);
