import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../cli/main.ts';
import { captureOutput } from './capture.ts';
import { scratchDir } from '../tmp.ts';

test('evovla sar: usage errors name the flag and the expected form (exit 2)', async () => {
  const cases: [string[], RegExp][] = [
    [['sar'], /expected 'train' or 'eval', got nothing/],
    [['sar', 'fit'], /expected 'train' or 'eval', got 'fit'/],
    [['sar', 'train'], /missing required flag '--task/],
    [['sar', 'train', '--task', 'towers'], /flag '--task': unknown task 'towers'/],
    [['sar', 'train', '--task', 'stack', '--steps', 'many'], /'--steps' expects an integer, got 'many'/],
    [['sar', 'train', '--task', 'stack', '--steps', '0'], /key 'train\.steps'/],
    [['sar', 'eval', '--model', '/nonexistent/sar.onnx'], /flag '--model'.*sar\.json/],
    [['sar', 'eval', '--model', 'x.onnx', '--seeds', '1;2'], /flag '--model'|'--seeds'/],
  ];
  for (const [argv, re] of cases) {
    const { result, err } = await captureOutput(() => main(argv));
    assert.equal(result, 2, argv.join(' '));
    assert.match(err, re, argv.join(' '));
  }
});

test('evovla sar train: a bad config file is named with its key', async () => {
  const dir = scratchDir('sar-cli-');
  const file = join(dir, 'sar.yaml');
  writeFileSync(file, 'gate:\n  threshold: 2\n');
  const { result, err } = await captureOutput(() => main(['sar', 'train', '--task', 'stack', '--config', file]));
  assert.equal(result, 2);
  assert.match(err, /sar\.yaml: key 'gate\.threshold'/);
});
