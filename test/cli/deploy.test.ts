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

  it('refuses a config with an unknown key as a usage error naming it', async () => {
    const { writeFileSync } = await import('node:fs');
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'safety:\n  watchdog:\n    timeout: 1\n');
    await assert.rejects(run(['--policy', 'expert', '--robot', 'sim', '--config', cfg]), (e: unknown) => e instanceof UsageError && /unknown key 'timeout' at safety.watchdog/.test(e.message));
  });
});
