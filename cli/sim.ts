/** `evovla sim`: placeholder until the simulator core lands (replaced by the sim module). */
import { UsageError } from './main.ts';

export async function run(argv: string[]): Promise<number> {
  if (argv.length > 0 && argv[0] !== '--help') throw new UsageError(`unexpected argument '${argv[0]}'`);
  console.log('evovla sim: simulator core not built yet');
  return 0;
}
