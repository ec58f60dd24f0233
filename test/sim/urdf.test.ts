import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import { Rng } from '../../sim/rng.ts';
import { getRobot, Kinematics, loadUrdfRobot, registerRobot, RobotDescriptionError, urdfToRobot } from '../../sim/robot/index.ts';
import type { Task } from '../../sim/task.ts';
import { blocksTask } from '../../tasks/blocks.ts';
import { runExpertEpisode } from '../../tasks/rollout.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/airbot_play.urdf', import.meta.url));
const base = { p: [0, 0, 0.75] as [number, number, number], q: [0, 0, 0, 1] as [number, number, number, number] };

test('the AIRBOT Play URDF imports to the same kinematics, limits and masses as the built-in description', () => {
  const urdf = loadUrdfRobot(FIXTURE, { id: 'airbot_play_urdf' });
  const builtIn = getRobot('airbot_play');
  assert.deepEqual(urdf.armJoints, builtIn.armJoints);
  assert.deepEqual(urdf.fingerJoints, builtIn.fingerJoints);
  assert.equal(urdf.tcp.link, 'link6');
  assert.deepEqual(urdf.gripper, { min: 0, max: 0.04, force: 7.5 });
  const a = new Kinematics(urdf, base);
  const b = new Kinematics(builtIn, base);
  assert.deepEqual(Array.from(a.lower), Array.from(b.lower));
  assert.deepEqual(Array.from(a.upper), Array.from(b.upper));
  const rng = new Rng(3);
  for (let i = 0; i < 50; i++) {
    const q = Array.from({ length: 6 }, (_, k) => rng.uniform(b.lower[k], b.upper[k]));
    const pa = a.fk(q);
    const pb = b.fk(q);
    assert.ok(Math.hypot(...pa.p.map((x, k) => x - pb.p[k])) < 1e-7);
    const d = Math.abs(pa.q.reduce((s, x, k) => s + x * pb.q[k], 0));
    assert.ok(1 - d < 1e-9);
  }
  for (const l of builtIn.links) {
    const u = urdf.links.find((x) => x.name === l.name)!;
    assert.ok(Math.abs(u.inertial!.mass - l.inertial!.mass) < 1e-9, l.name);
    const sorted = (v: number[]) => [...v].sort((x, y) => x - y);
    sorted(u.inertial!.principal).forEach((x, k) => assert.ok(Math.abs(x - sorted(l.inertial!.principal)[k]) < 1e-9, `${l.name} inertia`));
    // Meshes are skipped; every primitive (collision or visual) arrives.
    assert.equal(u.colliders.length, l.colliders.length, `${l.name} colliders`);
  }
});

test('a robot loaded from URDF runs in the env: the scripted expert places the block', async () => {
  registerRobot(loadUrdfRobot(FIXTURE, { id: 'airbot_play_urdf' }));
  const task: Task = { ...blocksTask, id: 'blocks_urdf', buildScene: (r) => ({ ...blocksTask.buildScene(r), robot: 'airbot_play_urdf' }) };
  const env = await createEnv(task);
  const { success } = runExpertEpisode(env, task, 2);
  assert.ok(success);
  env.free();
});

const minimal = (joint: string) => `<?xml version="1.0"?>
<robot name="t">
  <link name="base"/>
  <link name="a"><inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01"/></inertial></link>
  ${joint}
</robot>`;

test('bad URDF input is an error naming the file, the element and what was expected', () => {
  const cases: Array<[string, RegExp]> = [
    [minimal('<joint name="j" type="revolute"><parent link="base"/><child link="a"/><axis xyz="0 0 1"/><limit lower="-1" upper="x" effort="1" velocity="1"/></joint>'), /joint 'j' > limit: attribute 'upper': expected a number, got 'x'/],
    [minimal('<joint name="j" type="floating"><parent link="base"/><child link="a"/></joint>'), /joint 'j': attribute 'type': expected revolute, continuous, prismatic or fixed, got 'floating'/],
    [minimal('<joint name="j" type="revolute"><parent link="base"/><child link="b"/><axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>'), /joint 'j' > child: unknown link 'b' \(expected one of: base, a\)/],
    [minimal('<joint name="j" type="revolute"><parent link="base"/><child link="a"/><axis xyz="0 0"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>'), /joint 'j' > axis: attribute 'xyz': expected 3 numbers, got '0 0'/],
    [minimal('<joint name="j" type="revolute"><parent link="base"/><child link="a"/><axis xyz="0 0 1"/></joint>'), /joint 'j': missing <limit/],
    ['<robot name="t"><link name="a"></robot>', /line 1: expected <\/link>/],
    [
      minimal('<joint name="j" type="prismatic"><parent link="base"/><child link="a"/><axis xyz="0 1 0"/><limit lower="-0.04" upper="0" effort="1" velocity="1"/><mimic joint="finger1" multiplier="-1"/></joint>'),
      /joint 'j' > mimic: mimic joints are not supported \(this one follows 'finger1' with multiplier -1, offset 0\)/,
    ],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => urdfToRobot(text, '/tmp/my_arm.urdf'),
      (e: unknown) => e instanceof RobotDescriptionError && e.message.startsWith('/tmp/my_arm.urdf: ') && re.test(e.message),
      `expected ${re}`,
    );
  }
  assert.throws(() => loadUrdfRobot('/nonexistent/arm.urdf'), /\/nonexistent\/arm.urdf: file: cannot read/);
});
