// Child-process entry of parallel demo recording (policy/train/demos.ts): child processes do not
// inherit the parent's TypeScript loader, so register tsx here and then load the TypeScript body.
import { register } from 'tsx/esm/api';

register();
await import('./demo_worker_body.ts');
