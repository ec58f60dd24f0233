/**
 * Body of a demo-recording child process (policy/train/demos.ts): receives one `DemoShard`, records
 * its seeds with the expert, reports each episode, then exits. Any error is reported with its
 * message and the process exits non-zero.
 */
import { getTask } from '../../tasks/index.ts';
import { recordDemoSeeds, type DemoShard, type DemoWorkerMessage } from './demos.ts';

const send = (m: DemoWorkerMessage): Promise<void> => new Promise((resolve) => process.send!(m, undefined, {}, () => resolve()));

process.once('message', (shard: DemoShard) => {
  void (async () => {
    try {
      await recordDemoSeeds(getTask(shard.taskId), shard.dir, shard.seeds, shard.cameras, shard.size, shard.noise, (seed, success) => send({ kind: 'episode', seed, success }));
      await send({ kind: 'done' });
      process.exit(0);
    } catch (err) {
      await send({ kind: 'error', message: (err as Error).message });
      process.exit(1);
    }
  })();
});
