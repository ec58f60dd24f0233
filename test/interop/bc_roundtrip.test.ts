/**
 * The LeRobot round trip feeds training: demos exported to a LeRobotDataset v3.0 (lossless video)
 * and imported back train behaviour cloning to the same loss curve as the original episode files;
 * the run folder training wrote reads back in the viewer's run loader.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportLeRobot } from '../../interop/lerobot/export.ts';
import { importLeRobot } from '../../interop/lerobot/import.ts';
import { trainRun } from '../../policy/train/run.ts';
import { tinyTrainConfig, writeSyntheticDemos } from '../policy/helpers.ts';
import { scratchDir } from '../tmp.ts';
import { groupOf } from '../../viewer/app/run_data.ts';
import { RunWatcher } from '../../viewer/runs.ts';

const root = scratchDir('evovla-bc-lerobot-');

function lossCurve(runDir: string): Array<Record<string, number>> {
  return fs
    .readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .map((r) => Object.fromEntries(Object.entries(r as Record<string, unknown>).filter(([k]) => k === 'step' || /loss|l1_first|grad_norm/.test(k)) as Array<[string, number]>));
}

test('BC on demos imported from our LeRobot export follows the same loss curve as on the episode files', async () => {
  const demos = join(root, 'demos');
  const files = writeSyntheticDemos(demos, { episodes: 3, steps: 12, size: 16 });
  const dataset = join(root, 'dataset');
  await exportLeRobot(files, dataset, { codec: 'h264-lossless' });
  const imported = join(root, 'imported');
  const summary = await importLeRobot(dataset, imported);
  assert.deepEqual(summary.files.map((f) => f.slice(imported.length + 1)), ['stack-0.evep', 'stack-1.evep', 'stack-2.evep']);

  const run = (name: string, demoDir: string) =>
    trainRun(
      tinyTrainConfig(name, join(root, 'runs'), demoDir, {
        phases: [{ kind: 'bc', steps: 8, batch: 4, warmupSteps: 2, logEvery: 2, checkpointEvery: 4, valBatches: 1 }],
      }),
    );
  const a = await run('from-episodes', demos);
  const b = await run('from-lerobot', imported);
  const curveA = lossCurve(a.runDir);
  const curveB = lossCurve(b.runDir);
  assert.ok(curveA.filter((r) => 'loss' in r).length >= 4, 'the run logged its loss');
  assert.ok(curveA.some((r) => 'val_loss' in r), 'the run logged a validation loss');
  assert.deepEqual(curveB, curveA);

  // The run folder `evovla train` wrote is what the viewer reads: config, every metrics line.
  const watcher = new RunWatcher(a.runDir);
  watcher.load();
  const shown = watcher.summary();
  assert.match(shown.config, /kind: bc/);
  assert.equal(shown.metrics.length, fs.readFileSync(join(a.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length);
  assert.deepEqual(shown.notes, []);
  assert.equal(groupOf('val_loss'), groupOf('loss'), 'validation and training loss share a chart');
});
