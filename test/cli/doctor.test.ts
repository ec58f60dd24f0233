/**
 * `evovla doctor` reports each execution provider with a reason when it does not load, and
 * `evovla worker` refuses bad set-ups with a line naming what is wrong.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { main } from '../../cli/main.ts';
import { cudaStatus } from '../../nn/runtime.ts';
import { captureOutput } from './capture.ts';
import { startTestServer } from '../scale/helpers.ts';

test('doctor: CPU loads; CUDA is reported either way, with the reason when it does not load', async () => {
  const { result, out } = await captureOutput(() => main(['doctor', '--json']));
  assert.equal(result, 0);
  const checks = (JSON.parse(out) as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks;
  const by = new Map(checks.map((c) => [c.name, c]));
  assert.equal(by.get('onnxruntime cpu')?.ok, true);
  const cuda = by.get('onnxruntime cuda')!;
  if (!cudaStatus().available) {
    assert.equal(cuda.ok, false);
    assert.match(cuda.detail, /libonnxruntime_providers_cuda\.so.*npm run setup:cuda/s);
  } else assert.ok(cuda.detail.length > 0);
});

test('doctor --nats: a JetStream server answers; a closed port is reported, not thrown', async () => {
  const server = await startTestServer();
  try {
    const up = await captureOutput(() => main(['doctor', '--nats', server.url]));
    assert.match(up.out, new RegExp(`yes  NATS ${server.url}\\s+server 2\\.[\\d.]+, JetStream on`));
  } finally {
    await server.stop();
  }
  const down = await captureOutput(() => main(['doctor', '--nats', server.url]));
  assert.equal(down.result, 0);
  assert.match(down.out, new RegExp(`no   NATS ${server.url}\\s+cannot connect`));
});

test('worker: missing NATS URL, bad JOB_COMPLETION_INDEX and unknown task are usage errors', async () => {
  const saved = { url: process.env.NATS_URL, idx: process.env.JOB_COMPLETION_INDEX };
  delete process.env.NATS_URL;
  try {
    const none = await captureOutput(() => main(['worker']));
    assert.equal(none.result, 2);
    assert.match(none.err, /no NATS server: pass --nats nats:\/\/host:port or set NATS_URL/);
    process.env.JOB_COMPLETION_INDEX = 'seven';
    const idx = await captureOutput(() => main(['worker', '--nats', 'nats://127.0.0.1:1']));
    assert.match(idx.err, /environment variable JOB_COMPLETION_INDEX: expected a non-negative integer, got 'seven'/);
    delete process.env.JOB_COMPLETION_INDEX;
    const task = await captureOutput(() => main(['worker', '--nats', 'nats://127.0.0.1:1', '--task', 'juggle']));
    assert.match(task.err, /--task: unknown task 'juggle'/);
    const url = await captureOutput(() => main(['worker', '--nats', 'localhost:4222']));
    assert.equal(url.result, 2);
    assert.match(url.err, /--nats: expected nats:\/\/host:port \(or tls:\/\/, ws:\/\/, wss:\/\/\), got 'localhost:4222'/);
  } finally {
    if (saved.url !== undefined) process.env.NATS_URL = saved.url;
    if (saved.idx !== undefined) process.env.JOB_COMPLETION_INDEX = saved.idx;
    else delete process.env.JOB_COMPLETION_INDEX;
  }
});
