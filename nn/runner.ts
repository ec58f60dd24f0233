/**
 * Runs a model's forward pass with the parameters fed as inputs, so one session always uses the
 * ParamSet's current weights (e.g. PPO rollouts between updates) without re-exporting the model or
 * creating a new session after every training step.
 */
import { traceForward, type ModelDefinition } from './model.ts';
import type { Parameter } from './params.ts';
import { createSession, type HostTensor, type Session, type SessionOptions } from './runtime.ts';

export class ModelRunner {
  private constructor(
    readonly session: Session,
    private readonly params: readonly Parameter[],
    /** The model's own inputs (parameters excluded). */
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  /** Traces `model` with parameters as graph inputs and opens a session for it. */
  static async create(model: ModelDefinition, options: SessionOptions = {}): Promise<ModelRunner> {
    const { graph } = traceForward(model);
    const session = await createSession(graph.toModel({ params: 'input' }), options);
    const used = graph.params;
    return new ModelRunner(
      session,
      used,
      graph.inputs.map((t) => t.name),
      [...graph.outputs.keys()],
    );
  }

  /** Runs the forward pass on `inputs` with the parameters' current values. */
  async run(inputs: Readonly<Record<string, HostTensor>>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    const feeds: Record<string, HostTensor> = {};
    for (const name of this.inputNames) {
      const t = inputs[name];
      if (!t) throw new Error(`ModelRunner: missing input "${name}" (the model takes ${this.inputNames.join(', ')})`);
      feeds[name] = t;
    }
    for (const p of this.params) feeds[p.name] = { data: p.data, shape: p.shape };
    return this.session.run(feeds, outputs);
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
