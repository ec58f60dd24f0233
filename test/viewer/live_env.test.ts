/** Live mode end to end: an expert episode on an env with cameras streams to a socket client. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { createEnv } from '../../sim/env.ts';
import { attachEnvCameras } from '../../sim/render/env_cameras.ts';
import { getTask } from '../../tasks/index.ts';
import { runExpertEpisode } from '../../tasks/rollout.ts';
import { viewerPackr, type ServerMessage } from '../../viewer/protocol.ts';
import { startEnvLiveView } from '../../viewer/live_env.ts';

describe('startEnvLiveView', () => {
  it('publishes each reset as an episode and each step with its images, then restores the env', async () => {
    const task = getTask('blocks');
    const env = await createEnv(task, { cameras: [{ name: 'eye_arm', width: 24, height: 24 }] });
    const cams = await attachEnvCameras(env);
    const lines: string[] = [];
    const live = await startEnvLiveView(env, (l) => lines.push(l));
    const originalStep = Object.getPrototypeOf(env).step;
    try {
      assert.match(lines[0], /^live viewer: http:\/\/127\.0\.0\.1:\d+\/\?token=/);
      const url = new URL(live.url);
      const ws = new WebSocket(`ws://${url.host}/ws?token=${url.searchParams.get('token')}`);
      const got: ServerMessage[] = [];
      ws.on('message', (d) => got.push(viewerPackr.unpack(d as Buffer) as ServerMessage));
      await once(ws, 'open');
      while (live.viewer.stats().clients < 1) await new Promise((r) => setTimeout(r, 10));
      const result = runExpertEpisode(env, task, 2);
      // Wait for the last step to arrive.
      for (let i = 0; i < 400 && !got.some((m) => m.t === 'live' && (m.step.terminated || m.step.truncated)); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      const episodes = got.filter((m) => m.t === 'episode');
      assert.equal(episodes.length, 1);
      const ep = episodes[0];
      assert.ok(ep.t === 'episode');
      assert.equal(ep.episode.name, 'blocks-2');
      assert.ok(ep.episode.scene && ep.episode.scene.links.length > 0, 'live episode carries the scene to draw');
      const steps = got.flatMap((m) => (m.t === 'live' ? [m] : []));
      // Reset state plus every step (nothing dropped: this client reads).
      assert.equal(steps.length, result.steps + 1);
      assert.deepEqual(steps.map((s) => s.step.step), Array.from({ length: result.steps + 1 }, (_, i) => i));
      assert.equal(steps.at(-1)!.step.stage >= 0, true);
      assert.equal(steps[5].images?.eye_arm.rgb?.length, 24 * 24 * 3);
      ws.close();
    } finally {
      await live.finish(false);
      cams?.detach();
      env.free();
    }
    assert.equal(env.step, originalStep, 'finish() restores the env');
  });
});
