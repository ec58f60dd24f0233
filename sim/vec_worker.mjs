// Worker entry for VecEnv (a worker thread or a child process): workers do not inherit the
// parent's TypeScript loader, so register tsx here and then load the TypeScript worker body.
import { register } from 'tsx/esm/api';

register();
await import('./vec_worker_body.ts');
