/**
 * `evovla import --format lerobot DIR --out DIR2`: turn a LeRobotDataset v3.0 whose features map
 * onto the robot's joints into episode files (what our training reads). A dataset that does not
 * fit is refused with the feature that does not.
 */
import { ImportError, importLeRobot } from '../interop/lerobot/import.ts';
import { VideoToolError } from '../interop/video.ts';
import { parseFlags, requireString } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla import --format lerobot --out DIR2 [--robot ID] [--task ID] [--json] DIR
  DIR       a LeRobotDataset v3.0 folder (meta/info.json, data/, videos/)
  --format  lerobot (the only format read so far)
  --out     directory for the episode files (created if needed)
  --robot   robot the features must map onto (default: the dataset's robot_type when known, else airbot_play)
  --task    task id for datasets not exported by evovla (default lerobot): files <task>-<episode>.evep,
            seed = episode index, as a training config's data.demoDir reads them
  --json    print a JSON summary on stdout`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const args = parseFlags(argv, { format: 'string', out: 'string', robot: 'string', task: 'string', json: 'bool' }, USAGE);
  const format = requireString(args, 'format', USAGE);
  if (format !== 'lerobot') throw new UsageError(`flag '--format' expects lerobot, got '${format}'\n${USAGE}`);
  const out = requireString(args, 'out', USAGE);
  if (args.positional.length !== 1) throw new UsageError(`expected one dataset directory, got ${args.positional.length}\n${USAGE}`);
  try {
    const summary = await importLeRobot(args.positional[0], out, { robot: args.flags.robot as string | undefined, task: args.flags.task as string | undefined });
    if (args.flags.json) console.log(JSON.stringify(summary));
    else console.log(`evovla import: ${summary.episodes} episode(s), ${summary.frames} steps (${summary.robot}, ${summary.actionMode} actions, cameras [${summary.cameras.join(', ')}]) -> ${out}`);
    return 0;
  } catch (err) {
    if (err instanceof ImportError || err instanceof VideoToolError) throw new UsageError(err.message);
    throw err;
  }
}
