import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { blocksTask, type BlocksRandomization } from '../../tasks/blocks.ts';
import { getTask, TASKS } from '../../tasks/index.ts';

test('the registry finds blocks and names the known ids for an unknown one', () => {
  assert.equal(getTask('blocks'), blocksTask);
  assert.throws(() => getTask('nope'), (e: unknown) => /unknown task 'nope'/.test((e as Error).message) && Object.keys(TASKS).every((id) => (e as Error).message.includes(id)));
});

test('blocks randomisation is seeded and keeps blocks and the target 9 cm apart within the area', () => {
  const a = blocksTask.randomize(new Rng(5)) as BlocksRandomization;
  const b = blocksTask.randomize(new Rng(5)) as BlocksRandomization;
  assert.deepEqual(a, b);
  for (let seed = 0; seed < 50; seed++) {
    const r = blocksTask.randomize(new Rng(seed)) as BlocksRandomization;
    const pts = [...r.blocks, r.target];
    for (const p of pts) assert.ok(p.x >= 0.22 && p.x <= 0.36 && p.y >= -0.16 && p.y <= 0.16);
    for (let i = 0; i < pts.length; i++) for (let j = i + 1; j < pts.length; j++) assert.ok(Math.hypot(pts[i].x - pts[j].x, pts[i].y - pts[j].y) >= 0.09);
  }
});

test('scene puts every block on the table top and the stages name the target block', () => {
  const scene = blocksTask.buildScene(blocksTask.randomize(new Rng(1)));
  const blocks = scene.objects.filter((o) => o.name.startsWith('block_'));
  assert.equal(blocks.length, 3);
  for (const b of blocks) assert.ok(Math.abs(b.pose.p[2] - 0.77) < 1e-9);
  assert.deepEqual(blocksTask.stages.map((s) => s.name), ['reach', 'grasp', 'lift', 'carry', 'place']);
});
