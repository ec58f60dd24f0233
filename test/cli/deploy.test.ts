/** `evovla deploy` as a user runs it: flag errors, the sim twin end to end, ROS 2 absent here. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseDeployArgs, run } from '../../cli/deploy.ts';
import { UsageError } from '../../cli/main.ts';
import { readCommandLog } from '../../robot/log/command_log.ts';
import { writeTinyPolicy } from '../../robot/policies/tiny_mlp.ts';

import { captureOutput } from './capture.ts';
import { scratchDir } from '../tmp.ts';

const dir = scratchDir('evovla-cli-deploy-');

describe('evovla deploy flags', () => {
  const usage = (argv: string[], re: RegExp) => assert.throws(() => parseDeployArgs(argv), (e: unknown) => e instanceof UsageError && re.test(e.message));
  it('names the bad flag and the expected form', () => {
    usage(['--robot', 'sim'], /missing --policy \(expected --policy FILE.onnx or --policy expert\)/);
    usage(['--policy', 'expert', '--robot', 'ur5'], /--robot must be 'sim' or 'ros2', got 'ur5'/);
    usage(['--policy', 'p.pt', '--robot', 'sim'], /neither 'expert' nor a .onnx file/);
    usage(['--policy', 'expert', '--robot', 'ros2'], /expert .* runs only with --robot sim/);
    usage(['--policy', 'expert', '--robot', 'sim', '--duration', '-1'], /--duration '-1' is not a positive number of seconds/);
    usage(['--policy', 'expert', '--robot', 'sim', '--speed', '2'], /unknown option '--speed'/);
    usage(['--policy', 'expert', '--robot', 'sim', '--config'], /--config needs a value/);
    assert.equal(parseDeployArgs(['--help']), 'help');
    assert.deepEqual(parseDeployArgs(['--policy=expert', '--robot=sim', '--dry-run', '--seed', '4']), {
      policy: 'expert', robot: 'sim', config: undefined, dryRun: true, duration: undefined, task: undefined, seed: 4, log: undefined, quiet: false,
    });
  });
});

describe('evovla deploy runs', () => {
  it('drives the sim twin with the scripted expert and logs every command', async () => {
    const logPath = join(dir, 'expert.mcap');
    const { result, out } = await captureOutput(() => run(['--policy', 'expert', '--robot', 'sim', '--dry-run', '--duration', '1.3', '--log', logPath]));
    assert.equal(result, 0);
    assert.match(out, /expert\(blocks\) on sim/);
    assert.match(out, /stopped: duration reached/);
    const log = readCommandLog(readFileSync(logPath));
    assert.ok(log.complete);
    assert.equal(log.metadata.robot, 'sim');
    const diag = log.messages.filter((m) => m.topic === '/evovla/safety').map((m) => m.message.status[0].message as string);
    assert.ok(diag.some((m) => m.includes('startup')), 'the start-up hold is logged');
    // At least one command per tick plus the start-up command (the watchdog may add holds between
    // ticks if the machine stalls the process); no wall-clock assumption.
    const ticks = Number(/(\d+) ticks/.exec(out)?.[1]);
    const commands = log.messages.filter((m) => m.topic === '/evovla/command');
    assert.ok(ticks > 0);
    assert.ok(commands.length >= ticks + 1, `${commands.length} commands for ${ticks} ticks`);
  });

  it('runs an ONNX policy file on the sim twin', async () => {
    const policy = join(dir, 'tiny.onnx');
    writeTinyPolicy(policy);
    const { result, out } = await captureOutput(() => run(['--policy', policy, '--robot', 'sim', '--duration', '0.5', '--quiet', '--log', join(dir, 'onnx.mcap')]));
    assert.equal(result, 0);
    assert.match(out, /tiny.onnx on sim/);
  });

  it('explains what to install or source when ROS 2 is absent (as on this machine)', async () => {
    const policy = join(dir, 'tiny2.onnx');
    writeTinyPolicy(policy);
    const { result, err } = await captureOutput(() => run(['--policy', policy, '--robot', 'ros2', '--log', join(dir, 'ros.mcap')]));
    assert.equal(result, 1);
    assert.match(err, /cannot use --robot ros2: .*(npm install rclnodejs|source \/opt\/ros)/);
  });

  it('--dry-run on the sim transmits nothing: the arm does not move while commands are computed and logged', async () => {
    const logPath = join(dir, 'dry.mcap');
    const { result, out } = await captureOutput(() => run(['--policy', 'expert', '--robot', 'sim', '--dry-run', '--duration', '2.5', '--quiet', '--log', logPath]));
    assert.equal(result, 0);
    assert.match(out, /dry run: nothing transmitted/);
    const log = readCommandLog(readFileSync(logPath));
    const states = log.messages.filter((m) => m.topic === '/joint_states').map((m) => Array.from(m.message.position as number[]));
    assert.ok(states.length > 10);
    for (const q of states) assert.deepEqual(q, states[0], 'the sim arm moved during a dry run');
    // The policy's commands were still computed and logged, and they do ask for motion.
    const commands = log.messages.filter((m) => m.topic === '/evovla/command').map((m) => Array.from(m.message.points[0].positions as number[]));
    assert.ok(commands.some((c) => c.some((v, i) => Math.abs(v - states[0][i]) > 1e-4)), 'no command asked for motion (the test would prove nothing)');
  });

  it('stops, halts and exits 4 when the policy is refused for 0.5 s (NaN after a clean trial inference)', async () => {
    const policy = join(dir, 'nan-later.onnx');
    writeTinyPolicy(policy, { nonFinite: 'off-zero' });
    const { result, out, err } = await captureOutput(() => run(['--policy', policy, '--robot', 'sim', '--duration', '10', '--quiet', '--log', join(dir, 'nan.mcap')]));
    assert.equal(result, 4, out + err);
    assert.match(err, /stopped on a fault: policy nan-later\.onnx refused on 30 consecutive ticks \(0\.5 s; last: nonfinite joint1=NaN/);
    assert.match(out, /stopped: fault: /);
  });

  it('refuses at load a policy whose first output is non-finite', async () => {
    const policy = join(dir, 'nan-always.onnx');
    writeTinyPolicy(policy, { nonFinite: 'always' });
    const { result, err } = await captureOutput(() => run(['--policy', policy, '--robot', 'sim', '--duration', '1', '--quiet', '--log', join(dir, 'nan2.mcap')]));
    assert.equal(result, 1);
    assert.match(err, /nan-always\.onnx: trial inference on a zero observation gave a non-finite action \(joint1=-Infinity, .*\); refusing this policy/);
  });

  it('refuses a URDF robot in the config as a usage error naming the key', async () => {
    const { writeFileSync } = await import('node:fs');
    const cfg = join(dir, 'urdf.yaml');
    writeFileSync(cfg, 'robot: arms/my_arm.urdf\n');
    await assert.rejects(
      run(['--policy', 'expert', '--robot', 'sim', '--config', cfg]),
      (e: unknown) => e instanceof UsageError && /robot: 'arms\/my_arm\.urdf' is a URDF file; deploy accepts only a registered robot id \(expected one of: airbot_play\)/.test(e.message),
    );
  });

  it('refuses a config with an unknown key as a usage error naming it', async () => {
    const { writeFileSync } = await import('node:fs');
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'safety:\n  watchdog:\n    timeout: 1\n');
    await assert.rejects(run(['--policy', 'expert', '--robot', 'sim', '--config', cfg]), (e: unknown) => e instanceof UsageError && /unknown key 'timeout' at safety.watchdog/.test(e.message));
  });
});
