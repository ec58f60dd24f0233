/**
 * LeRobotDataset v3.0 export and import: the written files against the v3 schema (column names
 * and types, index columns, episode boundaries, video frame counts equal to data rows), the round
 * trip back to episode files, and the refusals of datasets that do not fit the robot.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { main } from '../../cli/main.ts';
import { exportLeRobot } from '../../interop/lerobot/export.ts';
import { importLeRobot } from '../../interop/lerobot/import.ts';
import { readParquetFile } from '../../interop/parquet.ts';
import { probeVideo } from '../../interop/video.ts';
import { readEpisode } from '../../sim/record/reader.ts';
import { captureOutput } from '../cli/capture.ts';
import { scratchDir } from '../tmp.ts';
import { CAMERAS, SIZE, writeEpisode } from './helpers.ts';

const dir = scratchDir('evovla-lerobot-');
const episodesDir = path.join(dir, 'episodes');
const dataset = path.join(dir, 'dataset');
const LENGTHS = [9, 6, 11];
let files: string[] = [];

before(async () => {
  fs.mkdirSync(episodesDir);
  files = LENGTHS.map((n, e) => writeEpisode(episodesDir, `stack-${e}`, e, n, { instruction: e === 1 ? 'put the top block on the base' : 'stack the blocks' }));
  const { result, err } = await captureOutput(() => main(['export', '--format', 'lerobot', '--out', dataset, episodesDir]));
  assert.equal(result, 0, err);
});

const num = (v: unknown) => Number(v);

test('meta/info.json has the v3.0 keys, path templates and features with dtype, shape and names', () => {
  const info = JSON.parse(fs.readFileSync(path.join(dataset, 'meta/info.json'), 'utf8'));
  assert.equal(info.codebase_version, 'v3.0');
  assert.equal(info.fps, 60);
  assert.equal(info.robot_type, 'airbot_play');
  assert.equal(info.total_episodes, 3);
  assert.equal(info.total_frames, LENGTHS.reduce((a, b) => a + b));
  assert.equal(info.total_tasks, 2);
  assert.equal(info.data_path, 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet');
  assert.equal(info.video_path, 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4');
  assert.deepEqual(info.splits, { train: '0:3' });
  for (const k of ['chunks_size', 'data_files_size_in_mb', 'video_files_size_in_mb']) assert.ok(info[k] > 0, k);
  const joints = ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6', 'gripper'];
  assert.deepEqual(info.features['observation.state'], { dtype: 'float32', shape: [7], names: joints });
  assert.deepEqual(info.features.action, { dtype: 'float32', shape: [7], names: joints });
  for (const cam of CAMERAS) {
    const f = info.features[`observation.images.${cam}`];
    assert.equal(f.dtype, 'video');
    assert.deepEqual(f.shape, [SIZE.height, SIZE.width, 3]);
    assert.deepEqual(f.names, ['height', 'width', 'channels']);
    assert.equal(f.info['video.codec'], 'h264');
    assert.equal(f.info['video.fps'], 60);
  }
  for (const [k, dtype] of Object.entries({ timestamp: 'float32', frame_index: 'int64', episode_index: 'int64', index: 'int64', task_index: 'int64' })) {
    assert.deepEqual(info.features[k], { dtype, shape: [1], names: null }, k);
  }
});

test('data parquet: one column per non-video feature with the declared type, contiguous index, episode boundaries', async () => {
  const info = JSON.parse(fs.readFileSync(path.join(dataset, 'meta/info.json'), 'utf8'));
  const data = await readParquetFile(path.join(dataset, 'data/chunk-000/file-000.parquet'));
  const expectedColumns = Object.keys(info.features).filter((k) => info.features[k].dtype !== 'video');
  assert.deepEqual(data.columns.map((c) => c.name), expectedColumns);
  const typeOf = Object.fromEntries(data.columns.map((c) => [c.name, c]));
  const parquetType = { float32: 'FLOAT', float64: 'DOUBLE', int64: 'INT64', bool: 'BOOLEAN' } as Record<string, string>;
  for (const k of expectedColumns) {
    const f = info.features[k];
    assert.equal(typeOf[k].type, parquetType[f.dtype], `${k} type`);
    assert.equal(typeOf[k].list, f.shape[0] > 1, `${k} is a list column iff its shape is > 1`);
  }
  const rows = data.rows;
  assert.equal(rows.length, info.total_frames);
  rows.forEach((r, i) => {
    assert.equal(num(r.index), i);
    assert.equal((r['observation.state'] as number[]).length, 7);
    assert.ok(Math.abs(num(r.timestamp) - num(r.frame_index) / 60) < 1e-6);
  });
  const episodes = (await readParquetFile(path.join(dataset, 'meta/episodes/chunk-000/file-000.parquet'))).rows;
  assert.equal(episodes.length, 3);
  let expectFrom = 0;
  for (const [e, ep] of episodes.entries()) {
    assert.equal(num(ep.episode_index), e);
    assert.equal(num(ep.length), LENGTHS[e]);
    assert.equal(num(ep.dataset_from_index), expectFrom);
    assert.equal(num(ep.dataset_to_index), expectFrom + LENGTHS[e]);
    const epRows = rows.slice(expectFrom, expectFrom + LENGTHS[e]);
    assert.ok(epRows.every((r, t) => num(r.episode_index) === e && num(r.frame_index) === t), `episode ${e} rows`);
    assert.deepEqual(epRows.map((r) => r['next.done']), epRows.map((_, t) => t === LENGTHS[e] - 1));
    assert.equal(num(ep['data/chunk_index']), 0);
    for (const cam of CAMERAS) {
      assert.ok(Math.abs(num(ep[`videos/observation.images.${cam}/from_timestamp`]) - expectFrom / 60) < 1e-9);
      assert.ok(Math.abs(num(ep[`videos/observation.images.${cam}/to_timestamp`]) - (expectFrom + LENGTHS[e]) / 60) < 1e-9);
    }
    assert.deepEqual(ep.tasks, [e === 1 ? 'put the top block on the base' : 'stack the blocks']);
    expectFrom += LENGTHS[e];
  }
  // Frame t pairs observation t with the action recorded at step t+1 (the action taken on it).
  const src = readEpisode(files[0]).steps;
  assert.deepEqual(rows[0]['observation.state'], Array.from(src[0].proprio));
  assert.deepEqual(rows[0].action, Array.from(src[1].action));
  assert.deepEqual(rows[8].action, Array.from(src[8].proprio), 'the last frame holds position');
});

test('tasks.parquet maps task text to task_index with pandas index metadata; stats.json covers every feature', async () => {
  const tasks = await readParquetFile(path.join(dataset, 'meta/tasks.parquet'));
  assert.deepEqual(tasks.columns.map((c) => c.name), ['task_index', 'task']);
  assert.deepEqual(tasks.rows.map((r) => [num(r.task_index), r.task]), [[0, 'stack the blocks'], [1, 'put the top block on the base']]);
  assert.deepEqual(JSON.parse(tasks.kvMetadata.pandas).index_columns, ['task']);
  const info = JSON.parse(fs.readFileSync(path.join(dataset, 'meta/info.json'), 'utf8'));
  const stats = JSON.parse(fs.readFileSync(path.join(dataset, 'meta/stats.json'), 'utf8'));
  assert.deepEqual(Object.keys(stats).sort(), Object.keys(info.features).sort());
  for (const k of ['min', 'max', 'mean', 'std', 'q01', 'q99']) assert.equal(stats['observation.state'][k].length, 7, k);
  assert.deepEqual(stats['observation.state'].count, [info.total_frames]);
  const allStates = (await readParquetFile(path.join(dataset, 'data/chunk-000/file-000.parquet'))).rows.map((r) => (r['observation.state'] as number[])[0]);
  assert.ok(Math.abs(stats['observation.state'].max[0] - Math.max(...allStates)) < 1e-6);
  const img = stats['observation.images.eye_side'];
  assert.equal(img.mean.length, 3);
  assert.deepEqual(img.mean.map((c: number[][]) => [c.length, c[0].length]), [[1, 1], [1, 1], [1, 1]]);
  assert.ok(img.max[0][0][0] <= 1 && img.min[0][0][0] >= 0, 'image stats are in 0..1');
});

test('each camera video has exactly as many frames as the data has rows, at the dataset fps', () => {
  const total = LENGTHS.reduce((a, b) => a + b);
  for (const cam of CAMERAS) {
    const p = probeVideo(path.join(dataset, `videos/observation.images.${cam}/chunk-000/file-000.mp4`));
    assert.equal(p.frames, total, cam);
    assert.equal(p.fps, 60);
    assert.equal(p.codec, 'h264');
    assert.equal(p.pixFmt, 'yuv420p');
    assert.deepEqual([p.width, p.height], [SIZE.width, SIZE.height]);
  }
});

test('import gives the exported episodes back: same actions, states, stages, rewards and frames', async () => {
  const out = path.join(dir, 'imported');
  const { result, err, out: stdout } = await captureOutput(() => main(['import', '--format', 'lerobot', dataset, '--out', out, '--json']));
  assert.equal(result, 0, err);
  const summary = JSON.parse(stdout);
  assert.equal(summary.episodes, 3);
  assert.deepEqual(summary.cameras, CAMERAS);
  for (const [e, file] of files.entries()) {
    const a = readEpisode(file);
    const b = readEpisode(path.join(out, path.basename(file)));
    assert.equal(b.damage, null);
    assert.equal(b.header?.instruction, a.header?.instruction);
    assert.equal(b.header?.seed, a.header?.seed);
    assert.deepEqual(b.footer, a.footer);
    assert.equal(b.steps.length, a.steps.length);
    const mae = (x: Uint8Array, y: Uint8Array) => {
      let sum = 0;
      for (let i = 0; i < x.length; i++) sum += Math.abs(x[i] - y[i]);
      return sum / x.length;
    };
    a.steps.forEach((s, k) => {
      const t = b.steps[k];
      assert.deepEqual(t.action, s.action, `episode ${e} step ${k} action`);
      assert.deepEqual(t.proprio, s.proprio, `episode ${e} step ${k} proprio`);
      assert.equal(t.stage, s.stage);
      assert.equal(Math.fround(t.reward), Math.fround(s.reward));
      assert.equal(t.terminated, s.terminated);
      assert.equal(t.truncated, s.truncated);
      for (const cam of CAMERAS) {
        const y = t.images![cam].rgb;
        assert.equal(y.length, s.images![cam].rgb.length);
        // H.264 (yuv420p) is lossy: a frame comes back close to its source, not bit-equal, and
        // closer to its own source than to the frames before and after it (no shift, no swap).
        const own = mae(s.images![cam].rgb, y);
        assert.ok(own < 8, `episode ${e} step ${k} ${cam}: mean abs pixel error ${own}`);
        for (const j of [k - 1, k + 1]) {
          if (j >= 0 && j < a.steps.length) assert.ok(own < mae(a.steps[j].images![cam].rgb, y), `episode ${e} frame ${k} ${cam} is closer to source frame ${j}`);
        }
      }
    });
  }
});

test('a dataset without our sidecar imports with a hold action for the first step', async () => {
  const foreign = path.join(dir, 'foreign');
  fs.cpSync(dataset, foreign, { recursive: true });
  fs.rmSync(path.join(foreign, 'meta/evovla.json'));
  const out = path.join(dir, 'imported-foreign');
  const summary = await importLeRobot(foreign, out, { task: 'stack' });
  assert.equal(summary.episodes, 3);
  assert.deepEqual(fs.readdirSync(out).sort(), ['stack-0.evep', 'stack-1.evep', 'stack-2.evep']);
  const a = readEpisode(files[2]);
  const b = readEpisode(path.join(out, 'stack-2.evep'));
  assert.equal(b.damage, null);
  assert.equal(b.header?.task, 'stack');
  assert.equal(b.header?.seed, 2);
  assert.equal(b.header?.instruction, 'stack the blocks');
  assert.equal(b.header?.robot, 'airbot_play');
  assert.deepEqual(b.steps[0].action, b.steps[0].proprio);
  for (let k = 1; k < a.steps.length; k++) assert.deepEqual(b.steps[k].action, a.steps[k].action);
  await assert.rejects(importLeRobot(foreign, out, { task: 'stack' }), /stack-0\.evep already exists; import into a new or empty folder/);
});

/** A copy of the dataset with info.json edited by `edit`. */
function editedDataset(name: string, edit: (info: any) => void): string {
  const d = path.join(dir, name);
  fs.cpSync(dataset, d, { recursive: true });
  const file = path.join(d, 'meta/info.json');
  const info = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(info);
  fs.writeFileSync(file, JSON.stringify(info));
  return d;
}

test('import refuses datasets whose features do not map onto the robot, naming the feature', async () => {
  const cases: Array<[string, (info: any) => void, RegExp]> = [
    ['bad-names', (i) => (i.features['observation.state'].names = ['shoulder_pan', 'shoulder_lift', 'elbow', 'wrist_flex', 'wrist_roll', 'x', 'gripper']), /feature 'observation\.state' names \[shoulder_pan.*expected \[joint1/],
    ['bad-shape', (i) => (i.features.action.shape = [6]), /feature 'action' has shape \[6\], expected \[7\]/],
    ['no-state', (i) => delete i.features['observation.state'], /no feature 'observation\.state'/],
    ['old-version', (i) => (i.codebase_version = 'v2.1'), /codebase_version is 'v2\.1', expected 'v3\.0'/],
    ['image-dtype', (i) => (i.features['observation.images.eye_arm'].dtype = 'image'), /feature 'observation\.images\.eye_arm' stores images in parquet/],
  ];
  for (const [name, edit, message] of cases) {
    const d = editedDataset(name, edit);
    const { result, err } = await captureOutput(() => main(['import', '--format', 'lerobot', d, '--out', path.join(dir, `out-${name}`)]));
    assert.equal(result, 2, name);
    assert.match(err, message, name);
  }
});

test('import names the video file that is missing or too short for an episode', async () => {
  const missing = editedDataset('no-video', () => {});
  fs.rmSync(path.join(missing, 'videos/observation.images.eye_arm'), { recursive: true });
  const a = await captureOutput(() => main(['import', '--format', 'lerobot', missing, '--out', path.join(dir, 'out-no-video')]));
  assert.equal(a.result, 2);
  assert.match(a.err, /observation\.images\.eye_arm\/chunk-000\/file-000\.mp4/);
  // Claim a longer last episode than the video holds.
  const short = path.join(dir, 'short-video');
  fs.cpSync(dataset, short, { recursive: true });
  const { writeParquetFile } = await import('../../interop/parquet.ts');
  const episodesFile = path.join(short, 'meta/episodes/chunk-000/file-000.parquet');
  const table = await readParquetFile(episodesFile);
  const cam = 'videos/observation.images.eye_side/from_timestamp';
  const rows = table.rows.map((r, i) => (i === 2 ? { ...r, [cam]: num(r[cam]) + 5 / 60 } : r));
  writeParquetFile(
    episodesFile,
    table.columns.map((c) => ({ name: c.name, type: (c.convertedType === 'UTF8' ? 'STRING' : c.type) as 'INT64', list: c.list, data: rows.map((r) => r[c.name]) })),
  );
  const b = await captureOutput(() => main(['import', '--format', 'lerobot', short, '--out', path.join(dir, 'out-short')]));
  assert.equal(b.result, 2);
  assert.match(b.err, /observation\.images\.eye_side\/chunk-000\/file-000\.mp4 has 26 frames; episode 2 needs frames 20\.\.30/);
});

test('export refuses an existing output and episodes that cannot share one dataset', async () => {
  await assert.rejects(exportLeRobot(files, dataset), /already exists and is not an empty directory/);
  const noCams = writeEpisode(dir, 'nocams', 5, 4, { cameras: false });
  await assert.rejects(exportLeRobot([files[0], noCams], path.join(dir, 'mixed')), /cameras is \[\], the first episode's \["eye_side@32x24","eye_arm@32x24"\]/);
  assert.ok(!fs.existsSync(path.join(dir, 'mixed')), 'a failed export leaves no dataset behind');
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('partial')), []);
});

test('--codec h264-lossless gives the frames back bit-exact', async () => {
  const out = path.join(dir, 'lossless');
  const { result, err } = await captureOutput(() => main(['export', '--format', 'lerobot', '--codec', 'h264-lossless', '--out', out, files[1]]));
  assert.equal(result, 0, err);
  const info = JSON.parse(fs.readFileSync(path.join(out, 'meta/info.json'), 'utf8'));
  assert.equal(info.features['observation.images.eye_side'].info['video.pix_fmt'], 'gbrp');
  assert.equal(probeVideo(path.join(out, 'videos/observation.images.eye_side/chunk-000/file-000.mp4')).frames, LENGTHS[1]);
  const back = path.join(dir, 'lossless-imported');
  await importLeRobot(out, back);
  const a = readEpisode(files[1]).steps;
  const b = readEpisode(path.join(back, path.basename(files[1]))).steps;
  a.forEach((s, k) => {
    for (const cam of CAMERAS) assert.deepEqual(b[k].images![cam].rgb, s.images![cam].rgb, `step ${k} ${cam}`);
  });
  const bad = await captureOutput(() => main(['export', '--format', 'lerobot', '--codec', 'vp9', '--out', path.join(dir, 'vp9'), files[1]]));
  assert.equal(bad.result, 2);
  assert.match(bad.err, /flag '--codec' expects h264, av1, h264-lossless, got 'vp9'/);
});
