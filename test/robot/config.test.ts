/** The deploy config: every safety item on by default, unknown keys and bad ranges named. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadDeployConfig, parseDeployConfig } from '../../robot/config.ts';
import { scratchDir } from '../tmp.ts';

describe('deploy config', () => {
  it('turns every safety item on by default', () => {
    const c = parseDeployConfig({});
    for (const [name, item] of Object.entries(c.safety)) assert.equal(item.enabled, true, `${name} should default on`);
    assert.equal(c.safety.watchdog.timeoutS, 0.1);
    assert.equal(c.safety.eeJump.maxStep, 0.05);
    assert.equal(c.controlHz, 60);
    assert.ok(Object.isFrozen(c.safety.watchdog));
  });

  it('rejects unknown keys, naming the key and where', () => {
    assert.throws(() => parseDeployConfig({ safety: { watchdog: { timeout: 0.2 } } }), (e: unknown) => e instanceof ConfigError && /unknown key 'timeout' at safety.watchdog/.test(e.message));
    assert.throws(() => parseDeployConfig({ saftey: {} }), /unknown key 'saftey' at \(top level\)/);
  });

  it('rejects out-of-range values, naming the key and the range', () => {
    assert.throws(() => parseDeployConfig({ safety: { watchdog: { timeoutS: 0 } } }), /safety.watchdog.timeoutS: .*>0/);
    assert.throws(() => parseDeployConfig({ safety: { velocityLimits: { scale: 1.5 } } }), /safety.velocityLimits.scale: .*<=1/);
    assert.throws(() => parseDeployConfig({ safety: { workspace: { min: [0, 0, 1], max: [1, 1, 0.5] } } }), /workspace.min must be below workspace.max/);
    assert.throws(() => parseDeployConfig({ ros2: { gripper: { mode: 'magic' } } }), /ros2.gripper.mode/);
  });

  it('loads YAML files and names the file in errors', () => {
    const dir = scratchDir('evovla-cfg-');
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'controlHz: 30\nsafety:\n  deadman:\n    enabled: false\nros2:\n  jointNames:\n    joint1: shoulder\n');
    const c = loadDeployConfig(good);
    assert.equal(c.controlHz, 30);
    assert.equal(c.safety.deadman.enabled, false);
    assert.equal(c.safety.estop.enabled, true);
    assert.equal(c.ros2.jointNames.joint1, 'shoulder');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'safety:\n  estop:\n    enabeld: false\n');
    assert.throws(() => loadDeployConfig(bad), new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: unknown key 'enabeld' at safety.estop`));
    assert.throws(() => loadDeployConfig(join(dir, 'none.yaml')), /cannot read config/);
  });

  it('ships a valid config and URDF for the ros2_control mock, matching the robot description', async () => {
    const { readFileSync } = await import('node:fs');
    const { robotSpecFor } = await import('../../robot/spec.ts');
    const c = loadDeployConfig('robot/ros2/mock/deploy-mock.yaml');
    assert.equal(c.ros2.gripper.jointName, 'gripper');
    const urdf = readFileSync('robot/ros2/mock/airbot_mock.urdf', 'utf8');
    const spec = robotSpecFor('airbot_play');
    spec.jointNames.forEach((name, i) => {
      const m = new RegExp(`<joint name="${name}" type="revolute">.*?<limit lower="([^"]+)" upper="([^"]+)" velocity="([^"]+)"`).exec(urdf);
      assert.ok(m, `URDF lacks ${name}`);
      assert.deepEqual(m.slice(1, 4).map(Number), [spec.limits[i].lower, spec.limits[i].upper, spec.limits[i].velocity]);
    });
  });
});
