import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv } from '../../../sim/env.ts';
import { Rng } from '../../../sim/rng.ts';
import type { SimState } from '../../../sim/types.ts';
import { getTask } from '../../../tasks/index.ts';
import { demoFrames, emptyHandedFrames, nearMissSegments, probeFrames, recordDemo, restoreDemo, wanderFrames, wanderReplays, type FrameRenderer } from '../../../rewards/sar/data.ts';

/** A renderer that draws nothing but counts what it was asked for. */
function countingRenderer(): FrameRenderer & { frames: number; scenes: number } {
  const r = {
    frames: 0,
    scenes: 0,
    setScene: () => {
      r.scenes++;
    },
    render: (_s: SimState) => {
      r.frames++;
      return { eye_side: new Uint8Array(12), eye_arm: new Uint8Array(12) };
    },
  };
  return r;
}

test('demos replay exactly from any step; near-miss replays are labelled by the ground truth and include real near misses', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  try {
    const demo = recordDemo(env, task, 1);
    assert.ok(demo.success, 'the expert demo succeeds');
    // Every stage but the last (the episode ends on success as the gripper retreats) completed.
    assert.ok(demo.firstTrue.slice(0, -1).every((t) => t >= 0), demo.firstTrue.join(','));
    // Restoring state t and applying action t gives the recorded state t+1.
    for (const t of [0, 13, Math.floor(demo.actions.length / 2)]) {
      restoreDemo(env, demo, t);
      const res = env.step(demo.actions[t]);
      assert.deepEqual(res.info.state.q, demo.infos[t + 1].state.q, `step ${t}`);
      assert.equal(res.info.stage, demo.infos[t + 1].stage);
    }
    const r = countingRenderer();
    const frames = demoFrames(task, demo, r, 5);
    assert.equal(frames.length, Math.ceil(demo.infos.length / 5));
    assert.equal(r.frames, frames.length);

    const graspK = task.stages.findIndex((s) => s.name.startsWith('grasp'));
    let openGraspNeverDone = false;
    let segments = 0;
    for (const seg of nearMissSegments(env, task, demo, r, new Rng(1), { before: 8, after: 10, offsetMin: 0.02, offsetMax: 0.03 }, 3)) {
      segments++;
      for (const f of seg.frames) {
        assert.equal(f.targetStage, seg.stage);
        task.stages.forEach((s, k) => assert.equal(f.done[k] === 1, f.predicates[s.name]));
      }
      if (seg.stage === graspK && seg.perturbation === 'open') openGraspNeverDone = seg.frames.every((f) => !f.done[graspK]);
    }
    assert.equal(segments, 4 * demo.firstTrue.filter((t) => t > 0).length);
    assert.ok(openGraspNeverDone, 'keeping the gripper open at the grasp never completes the grasp');

    // The probe: a real first stage, then nothing past the reach (it works 3 cm beside the block).
    const probe = probeFrames(env, task, demo, r, new Rng(2));
    assert.ok(probe.length > 0);
    const maxStage = Math.max(...probe.slice(-Math.floor(probe.length / 2)).map((f) => f.gtStage));
    assert.ok(maxStage <= 2, `probe reached stage ${maxStage}`);
  } finally {
    env.free();
  }
});

test('empty-handed replays: the grasp closes on air beside the block and the arm goes on with nothing in hand', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  try {
    const demo = recordDemo(env, task, 2);
    const r = countingRenderer();
    const frames = emptyHandedFrames(env, task, demo, r, new Rng(5), { before: 12, after: 24, offsetMin: 0.02, offsetMax: 0.03 }, 4);
    assert.equal(r.frames, frames.length);
    const graspStages = task.stages.map((s, k) => (s.name.startsWith('grasp_') ? k : -1)).filter((k) => k >= 0);
    assert.deepEqual(graspStages, [2, 11]);
    assert.ok(frames.length > 50, `${frames.length} frames`);
    for (const f of frames) {
      assert.equal(f.source, 'near_miss');
      assert.ok(f.targetStage >= 2 && f.targetStage < task.stages.length);
      // A gate stuck from the reach before the missed grasp on sees this frame.
      assert.ok(f.contextFrom === 1 || f.contextFrom === 10, `contextFrom ${f.contextFrom}`);
      assert.ok(f.contextFrom! < f.targetStage, `contextFrom ${f.contextFrom} before target ${f.targetStage}`);
      // expertOnly: done in the expert's frame of the same step, denied by the ground truth here.
      const shown = demo.infos[Math.min(f.step, demo.infos.length - 1)].predicates;
      for (const k of f.expertOnly!) {
        assert.ok(k >= f.contextFrom! && k <= f.targetStage, `expertOnly ${k}`);
        assert.ok(shown[task.stages[k].name] && !f.done[k], `stage ${k} at step ${f.step}`);
      }
      assert.equal(f.done[f.targetStage], f.predicates[task.stages[f.targetStage].name] ? 1 : 0, 'labelled by the ground truth');
      // Really empty-handed: no grasp stage holds in any frame (nor any isGrasped predicate: the
      // replay was dry-run for that before it was rendered).
      for (const k of graspStages) assert.equal(f.done[k], 0, `grasp stage ${k} holds at step ${f.step}`);
    }
    // Each replay starts `before` steps ahead of the reach, so the frames cover the reach too.
    const firstStep = Math.min(...frames.filter((f) => f.contextFrom === 1).map((f) => f.step));
    assert.ok(firstStep <= demo.firstTrue[1], `first frame at step ${firstStep}, reach done at ${demo.firstTrue[1]}`);
    // Hard negatives for the stages after the grasp: frames where the expert would be lifting,
    // carrying, lowering or releasing, and the ground truth says that stage is not done (an offset
    // grasp may still catch the block: such frames are honest positives).
    const negatives = frames.filter((f) => f.targetStage >= 4 && f.targetStage <= 8 && !f.done[f.targetStage]).length;
    assert.ok(negatives > 20, `${negatives} not-done frames for stages 4..8`);
    // The first round's placement stages (lower, release, retreat: 6..8) are done in the expert's
    // frames of round 2 and denied in the empty-handed ones: the hardest negatives are there.
    const expertOnly = new Set(frames.flatMap((f) => f.expertOnly!));
    for (const k of [6, 7, 8]) assert.ok(expertOnly.has(k), `stage ${k} never expert-only: ${[...expertOnly]}`);
    // Target stages follow the expert's pace, reaching past the grasp into lift, carry, lower, release.
    const targets = new Set(frames.map((f) => f.targetStage));
    for (const k of [2, 4, 5, 6, 7]) assert.ok(targets.has(k), `no frame targets stage ${k}: ${[...targets]}`);
  } finally {
    env.free();
  }
});

test('off-task replays: the arm goes far from every block, gripper closed or open, labelled by the ground truth, the same for the same seed', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  try {
    const demo = recordDemo(env, task, 3);
    const states: SimState[] = [];
    const r: FrameRenderer = {
      setScene: () => {},
      render: (s) => {
        states.push(structuredClone(s));
        return { eye_side: new Uint8Array(12), eye_arm: new Uint8Array(12) };
      },
    };
    const opts = { wander: 3, wanderLegs: 4, wanderLegSteps: 30 };
    const replays = [...wanderReplays(env, task, demo, r, new Rng(9), opts, 2)];
    assert.equal(replays.length, 3);
    const frames = replays.flat();
    assert.equal(states.length, frames.length);
    for (const rep of replays) assert.ok(rep.length > 0 && rep.length <= (4 * 30) / 2, `${rep.length} frames`);
    frames.forEach((f, i) => {
      assert.equal(f.source, 'near_miss');
      assert.equal(f.perturbation, 'wander');
      assert.equal(f.targetStage, Math.min(f.gtStage, task.stages.length - 1));
      task.stages.forEach((s, k) => assert.equal(f.done[k] === 1, s.done(states[i]), `${s.name} at frame ${i}`));
    });
    // Off task: many frames with the tool 15 cm or more from every block, some with the gripper
    // closed (what the expert never shows away from a block).
    const far = states.filter((s) => Object.entries(s.objects).every(([n, o]) => n === 'table' || Math.hypot(s.ee.p[0] - o.p[0], s.ee.p[1] - o.p[1]) > 0.15));
    assert.ok(far.length > frames.length / 4, `${far.length} of ${frames.length} frames far from every block`);
    assert.ok(far.some((s) => s.gripper < 0.01), 'the closed gripper away from the blocks');
    // Seeded: the same draws give the same replays.
    const again = wanderFrames(env, task, demo, countingRenderer(), new Rng(9), opts, 2);
    assert.deepEqual(again.map((f) => [f.step, f.gtStage, Array.from(f.done)]), frames.map((f) => [f.step, f.gtStage, Array.from(f.done)]));
  } finally {
    env.free();
  }
});

test("empty-handed replays: a later accidental catch ends the replay ('cut'); 'reject' threw the whole grasp's replay away", async () => {
  // Jujube-Cup seed 0: every offset draw of the jujube grasp closes on air there, but the offset
  // hand later catches the cup's handle, so 'reject' kept no replay of the jujube grasp at all.
  const task = getTask('jujube_cup');
  const env = await createEnv(task);
  try {
    const demo = recordDemo(env, task, 0);
    const opts = { before: 12, after: 24, offsetMin: 0.02, offsetMax: 0.03 };
    const reject = emptyHandedFrames(env, task, demo, countingRenderer(), new Rng(5), { ...opts, emptyHandedCatch: 'reject' }, 4);
    const cut = emptyHandedFrames(env, task, demo, countingRenderer(), new Rng(5), { ...opts, emptyHandedCatch: 'cut' }, 4);
    const jujubeGrasp = task.stages.findIndex((s) => s.name === 'grasp_jujube');
    assert.ok(jujubeGrasp > 0);
    const ofGrasp = (fs: typeof cut) => fs.filter((f) => f.contextFrom === jujubeGrasp - 1);
    assert.equal(ofGrasp(reject).length, 0, 'reject: no replay of the jujube grasp');
    const kept = ofGrasp(cut);
    assert.ok(kept.length > 20, `cut: ${kept.length} frames of the jujube grasp`);
    // Still really empty-handed: the step that caught something is not kept, nor anything after it.
    const graspStages = task.stages.map((s, k) => (s.name.startsWith('grasp_') ? k : -1)).filter((k) => k >= 0);
    for (const f of cut) {
      for (const k of graspStages) assert.equal(f.done[k], 0, `grasp stage ${k} holds at step ${f.step}`);
      for (const [name, v] of Object.entries(f.predicates)) if (name.startsWith('isGrasped')) assert.equal(v, false, `${name} at step ${f.step}`);
    }
    // Cut short of the demo's end (it caught something later), but past the grasp and its lift.
    const last = Math.max(...kept.map((f) => f.step));
    assert.ok(last < demo.actions.length - 4, `replay ran to ${last} of ${demo.actions.length}`);
    assert.ok(last > demo.firstTrue[jujubeGrasp] + 24, `replay ended at ${last}, grasp at ${demo.firstTrue[jujubeGrasp]}`);
    // The default is 'cut'.
    assert.deepEqual(emptyHandedFrames(env, task, demo, countingRenderer(), new Rng(5), opts, 4).map((f) => f.step), cut.map((f) => f.step));
  } finally {
    env.free();
  }
});
