import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadEnvConfig, parseEnvConfig } from '../../sim/config.ts';
import { createEnv } from '../../sim/env.ts';
import { blocksTask } from '../../tasks/blocks.ts';
import { scratchDir } from '../tmp.ts';

test('defaults are filled in and the result is frozen', () => {
  const c = parseEnvConfig({});
  assert.equal(c.actionMode, 'joint');
  assert.equal(c.physicsHz, 240);
  assert.equal(c.controlHz, 60);
  assert.ok(Object.isFrozen(c));
});

test('unknown keys and bad values name the source, the key and what was expected', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ phyicsHz: 240 }, /^env config: key 'phyicsHz': unknown key \(expected one of: actionMode, physicsHz/],
    [{ physicsHz: 'fast' }, /^env config: key 'physicsHz': .*number.*got "fast"/],
    [{ actionMode: 'torque' }, /^env config: key 'actionMode': .*"joint".*"ee_delta".*got "torque"/],
    [{ physicsHz: 240, controlHz: 70 }, /^env config: key 'controlHz': physicsHz must be a whole multiple of controlHz/],
    [{ rewardScales: { success: 'x' } }, /^env config: key 'rewardScales.success'/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseEnvConfig(input), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), String(re));
});

test('createEnv rejects a bad config before building anything', async () => {
  await assert.rejects(createEnv(blocksTask, { maxSteps: -1 }), /key 'maxSteps'/);
});

test('a YAML config file is read, and its errors name the file', () => {
  const dir = scratchDir('evovla-config-');
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'actionMode: ee_delta\nrewardScales:\n  success: 2\n');
  const c = loadEnvConfig(good);
  assert.equal(c.actionMode, 'ee_delta');
  assert.deepEqual({ ...c.rewardScales }, { success: 2 });
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'controlHz: 0\n');
  assert.throws(() => loadEnvConfig(bad), (e: unknown) => e instanceof ConfigError && (e as Error).message.startsWith(`${bad}: key 'controlHz'`));
  const list = join(dir, 'list.yaml');
  writeFileSync(list, '- 1\n- 2\n');
  assert.throws(() => loadEnvConfig(list), /expected a mapping/);
});

test('camera entries take the renderer fields, and a bad camera key names the key and the expected form', () => {
  const dir = scratchDir('evovla-config-');
  const good = join(dir, 'cameras.yaml');
  writeFileSync(good, 'cameras:\n  - {name: top, width: 64, height: 48, fx: 50, fy: 50, cx: 31.5, cy: 23.5, near: 0.05, far: 2, mount: {kind: link, link: ee, pose: {p: [0, 0, 0.1], q: [0, 0, 0, 1]}}}\n');
  const c = loadEnvConfig(good);
  assert.deepEqual(c.cameras[0].mount, { kind: 'link', link: 'ee', pose: { p: [0, 0, 0.1], q: [0, 0, 0, 1] } });
  assert.ok(Object.isFrozen(c.cameras[0].mount));
  // A size-only entry stays size-only: nothing is filled in (the built-in placement fills it later).
  assert.deepEqual({ ...parseEnvConfig({ cameras: [{ name: 'eye_side', width: 8, height: 8 }] }).cameras[0] }, { name: 'eye_side', width: 8, height: 8 });
  const bad: Array<[string, RegExp]> = [
    ['{name: top, width: 64, height: 48, fov: 40}', /key 'cameras\.0\.fov': unknown key \(expected one of: name, width, height, fovy, fx, fy, cx, cy, near, far, mount, depth, segmentation\)/],
    ['{name: top, width: 64, height: 48, mount: {kind: lookAt, eye: [1, 0, 1], target: [0, 0, 0], up: [0, 0, 1]}}', /key 'cameras\.0\.mount\.up': unknown key \(expected one of: kind, eye, target\)/],
    ['{name: top, width: 64, height: 48, mount: {kind: above}}', /key 'cameras\.0\.mount\.kind': expected a mount \{kind: 'world', pose\} \| \{kind: 'lookAt', eye, target\} \| \{kind: 'link', link, pose\}, got "above"/],
    ['{name: top, width: 64, height: 48, mount: {kind: lookAt, eye: [1, 0], target: [0, 0, 0]}}', /key 'cameras\.0\.mount\.eye': expected \[x, y, z\] in metres, got \[1,0\]/],
    ['{name: top, width: 64, height: 48, fovy: 180}', /key 'cameras\.0\.fovy': .*179, got 180/],
    ['{name: top, width: 64, height: 48, near: 1, far: 0.5}', /key 'cameras\.0\.far': far must be greater than near, got 0.5/],
  ];
  for (const [entry, re] of bad) {
    const file = join(dir, 'bad-camera.yaml');
    writeFileSync(file, `cameras:\n  - ${entry}\n`);
    assert.throws(() => loadEnvConfig(file), (e: unknown) => e instanceof ConfigError && (e as Error).message.startsWith(`${file}: key 'cameras.0.`) && re.test((e as Error).message), String(re));
  }
});
