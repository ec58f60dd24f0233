/**
 * The Kubernetes manifest for rollout workers, checked against the Kubernetes OpenAPI schema
 * (kubernetes-models validates each object) and against the worker command it runs.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { parseAllDocuments } from 'yaml';
import { parseFlags } from '../../cli/args.ts';
import { WORKER_FLAGS } from '../../cli/worker.ts';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

function load(): Array<Record<string, any>> {
  const docs = parseAllDocuments(readFileSync(root('scale/k8s/workers.yaml'), 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], 'YAML parses');
  return docs.map((d) => d.toJS());
}

test('the workers manifest is a valid ConfigMap + Indexed Job', () => {
  const [cm, job] = load();
  assert.equal(cm.kind, 'ConfigMap');
  assert.equal(job.kind, 'Job');
  new ConfigMap(cm as never).validate();
  new Job(job as never).validate();
  assert.match(cm.data.NATS_URL, /^nats:\/\/[^\s]+:\d+$/);
  assert.equal(job.spec.completionMode, 'Indexed');
  const c = job.spec.template.spec.containers[0];
  const index = c.env.find((e: any) => e.name === 'JOB_COMPLETION_INDEX');
  assert.equal(index.valueFrom.fieldRef.fieldPath, "metadata.annotations['batch.kubernetes.io/job-completion-index']");
  assert.equal(c.envFrom[0].configMapRef.name, cm.metadata.name, 'NATS_URL comes from the ConfigMap above');
  // The container's arguments are a valid `evovla worker` command line.
  assert.equal(c.args[0], 'worker');
  const flags = parseFlags(c.args.slice(1), WORKER_FLAGS, 'usage').flags;
  assert.equal(flags.nats, undefined, 'the URL comes from NATS_URL, not a flag');
  assert.ok(typeof flags.envs === 'number' && flags.envs >= 1);
});

test('the validator rejects a broken Job (so the check above can fail)', () => {
  const [, job] = load();
  const broken = structuredClone(job);
  broken.spec.completions = 'eight';
  assert.throws(() => new Job(broken as never).validate(), /completions must be integer/);
  const noImage = structuredClone(job);
  noImage.spec.template.spec.containers[0].image = 42;
  assert.throws(() => new Job(noImage as never).validate(), /image must be string/);
});

test('the Containerfile runs the CLI entry point and keeps host modules out', () => {
  const text = readFileSync(root('Containerfile'), 'utf8');
  const entry = /ENTRYPOINT \["node", "([^"]+)"\]/.exec(text);
  assert.ok(entry && existsSync(root(entry[1])), `ENTRYPOINT file ${entry?.[1]} exists`);
  assert.match(text, /^CMD \["worker"\]$/m);
  assert.match(text, /ONNXRUNTIME_NODE_INSTALL=skip/);
  const ignore = readFileSync(root('.containerignore'), 'utf8').split('\n');
  assert.ok(ignore.includes('node_modules'), 'node_modules (native builds of the host) stays out of the image');
});
