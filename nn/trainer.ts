/**
 * Runs a generated training graph: holds the parameters (in the ParamSet, so exports always see the
 * current weights) and the AdamW moments as Float32Arrays, feeds them with each batch and takes the
 * updated ones back. ONNX Runtime returns every output in a freshly allocated array, so a run never
 * writes into a buffer it reads; the previous step's arrays are simply dropped.
 */
import type { ModelDefinition } from './model.ts';
import type { ParamSet, Parameter } from './params.ts';
import { createSession, type HostTensor, type Session, type SessionOptions } from './runtime.ts';
import {
  TRAIN_IO,
  buildGradientGraph,
  buildTrainingGraph,
  buildUpdateGraph,
  encodeTrainingGraph,
  gradientOutputNames,
  trainingOutputNames,
  updateOutputNames,
  type LossFn,
  type TrainingGraphOptions,
  type TrainingLayout,
} from './train-graph.ts';

/** Options of `Trainer.create`. */
export interface TrainerOptions extends TrainingGraphOptions {
  model: ModelDefinition;
  loss: LossFn;
  session?: SessionOptions;
}

/** The result of one step. */
export interface StepResult {
  loss: number;
  gradNorm: number;
  /** Learning rate applied (after warmup). */
  lr: number;
  metrics: Record<string, number>;
  /** Forward outputs, when the graph exposes them. */
  forward: Record<string, HostTensor>;
}

/**
 * A refused step: the loss or the gradient norm was not finite. The parameters and optimizer state
 * are those from before the step, so the trainer can go on (e.g. with the next batch).
 */
export class NonFiniteStepError extends Error {
  constructor(
    message: string,
    /** The step that was refused (1-based). */
    readonly step: number,
    readonly loss: number,
    readonly gradNorm: number,
    /** Trainable parameters whose gradient holds a NaN or an infinity (or overflows its norm). */
    readonly parameters: readonly string[],
  ) {
    super(message);
    this.name = 'NonFiniteStepError';
  }
}

/** Optimizer state as plain arrays (for checkpoints). */
export interface OptimizerState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

export class Trainer {
  private m: Float32Array;
  private v: Float32Array;
  private stepCount = 0;
  private running = false;
  private lr: number;
  private readonly outputNames: string[];
  private readonly byName: Map<string, Parameter>;
  private options: TrainerOptions | null = null;
  /** Gradient accumulation: the two half-step sessions (built on first use) and the running sum. */
  private accumulation: { gradient: Session; update: Session } | null = null;
  private accumulated: Float32Array | null = null;
  private accumulatedCount = 0;

  private constructor(
    readonly session: Session,
    readonly layout: TrainingLayout,
    readonly params: ParamSet,
    /** The ONNX bytes of the training graph (for inspection or saving). */
    readonly modelBytes: Uint8Array,
  ) {
    this.m = new Float32Array(layout.flatSize);
    this.v = new Float32Array(layout.flatSize);
    this.lr = layout.optimizer.lr;
    this.outputNames = trainingOutputNames(layout);
    this.byName = new Map(params.list().map((p) => [p.name, p]));
  }

  /** Generates the training graph for `model` + `loss` and opens a session for it. */
  static async create(options: TrainerOptions): Promise<Trainer> {
    if (options.floatType === 'float64') throw new Error('Trainer runs float32 graphs; float64 graphs are for gradient checks');
    const { graph, layout } = buildTrainingGraph(options.model, options.loss, options);
    const bytes = encodeTrainingGraph(graph, layout);
    const session = await createSession(bytes, options.session);
    const trainer = new Trainer(session, layout, options.model.params, bytes);
    trainer.options = options;
    return trainer;
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.stepCount;
  }

  /** Base learning rate fed to the graph (warmup scales it inside the graph). */
  get learningRate(): number {
    return this.lr;
  }

  set learningRate(lr: number) {
    if (!(lr >= 0)) throw new Error(`learning rate must be >= 0, got ${lr}`);
    this.lr = lr;
  }

  /**
   * One forward/backward/AdamW update on `batch` (every batch input of the layout, by name). Steps
   * must be awaited one at a time: each reads the state the previous one wrote.
   */
  async trainStep(batch: Readonly<Record<string, HostTensor>>): Promise<StepResult> {
    if (this.running) throw new Error(`trainStep: step ${this.stepCount + 1} started before the previous step finished; await each step`);
    this.running = true;
    try {
      return await this.runStep(batch);
    } finally {
      this.running = false;
    }
  }

  private batchFeeds(batch: Readonly<Record<string, HostTensor>>): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = {};
    for (const { name } of this.layout.batchInputs) {
      const t = batch[name];
      if (!t) throw new Error(`trainStep: batch lacks "${name}" (expects ${this.layout.batchInputs.map((b) => b.name).join(', ')})`);
      feeds[name] = t;
    }
    for (const name of [...this.layout.trainable.map((s) => s.name), ...this.layout.frozen, ...this.layout.unreached]) {
      const p = this.byName.get(name)!;
      feeds[name] = { data: p.data, shape: p.shape };
    }
    return feeds;
  }

  /** Gradients accumulated since the last update (0 when none). */
  get accumulatedSteps(): number {
    return this.accumulatedCount;
  }

  /**
   * Gradient accumulation, first half: computes the gradient on `batch` and adds it to a running
   * sum; the parameters do not change. `applyAccumulated()` then updates with the mean gradient,
   * so k equal micro-batches give the step one batch k times as large would (clipping, moments
   * and the step counter see one update). A non-finite loss or gradient is refused and not added.
   */
  async accumulate(batch: Readonly<Record<string, HostTensor>>): Promise<{ loss: number; metrics: Record<string, number>; forward: Record<string, HostTensor> }> {
    if (this.running) throw new Error('accumulate: started before the previous step finished; await each step');
    this.running = true;
    try {
      const sessions = await this.accumulationSessions();
      const out = await sessions.gradient.run(this.batchFeeds(batch), gradientOutputNames(this.layout));
      const loss = (out[TRAIN_IO.loss].data as Float32Array)[0];
      const grad = out[TRAIN_IO.grad].data as Float32Array;
      const squares = out[TRAIN_IO.gradSquares].data as Float64Array;
      const bad = this.layout.trainable.filter((_, i) => !Number.isFinite(squares[i])).map((sl) => sl.name);
      if (!Number.isFinite(loss) || bad.length > 0) {
        const step = this.stepCount + 1;
        throw new NonFiniteStepError(
          `accumulate: loss ${loss}${bad.length ? `, non-finite gradients in ${bad.slice(0, 12).join(', ')}` : ''} at step ${step}; not accumulated`,
          step,
          loss,
          Number.NaN,
          bad,
        );
      }
      if (!this.accumulated) this.accumulated = grad;
      else {
        const acc = this.accumulated;
        for (let i = 0; i < acc.length; i++) acc[i] += grad[i];
      }
      this.accumulatedCount++;
      const metrics: Record<string, number> = {};
      for (const name of this.layout.metrics) metrics[name] = (out[TRAIN_IO.metric(name)].data as Float32Array)[0];
      const forward: Record<string, HostTensor> = {};
      for (const name of this.layout.forwardOutputs) forward[name] = out[TRAIN_IO.forward(name)];
      return { loss, metrics, forward };
    } finally {
      this.running = false;
    }
  }

  /** Gradient accumulation, second half: one AdamW update with the mean accumulated gradient. */
  async applyAccumulated(): Promise<{ gradNorm: number; lr: number; microBatches: number }> {
    if (this.running) throw new Error('applyAccumulated: started before the previous step finished; await each step');
    if (!this.accumulated || this.accumulatedCount === 0) throw new Error('applyAccumulated: nothing accumulated (call accumulate(batch) first)');
    this.running = true;
    try {
      const sessions = await this.accumulationSessions();
      const count = this.accumulatedCount;
      const mean = this.accumulated;
      if (count > 1) for (let i = 0; i < mean.length; i++) mean[i] /= count;
      const feeds: Record<string, HostTensor> = { [TRAIN_IO.grad]: { data: mean, shape: [mean.length] } };
      for (const slot of this.layout.trainable) {
        const p = this.byName.get(slot.name)!;
        feeds[slot.name] = { data: p.data, shape: p.shape };
      }
      feeds[TRAIN_IO.m] = { data: this.m, shape: [this.m.length] };
      feeds[TRAIN_IO.v] = { data: this.v, shape: [this.v.length] };
      feeds[TRAIN_IO.step] = { data: Float32Array.of(this.stepCount + 1), shape: [] };
      feeds[TRAIN_IO.lr] = { data: Float32Array.of(this.lr), shape: [] };
      const out = await sessions.update.run(feeds, updateOutputNames(this.layout));
      const gradNorm = (out[TRAIN_IO.gradNorm].data as Float32Array)[0];
      // Accumulated gradients were finite one by one; their sum can still overflow.
      this.accumulated = null;
      this.accumulatedCount = 0;
      if (!Number.isFinite(gradNorm)) {
        const step = this.stepCount + 1;
        throw new NonFiniteStepError(`applyAccumulated: gradient norm is ${gradNorm} at step ${step}; parameters were not updated`, step, Number.NaN, gradNorm, []);
      }
      for (const slot of this.layout.trainable) this.byName.get(slot.name)!.data = out[TRAIN_IO.next(slot.name)].data as Float32Array;
      this.m = out[TRAIN_IO.nextM].data as Float32Array;
      this.v = out[TRAIN_IO.nextV].data as Float32Array;
      this.stepCount++;
      return { gradNorm, lr: (out[TRAIN_IO.appliedLr].data as Float32Array)[0], microBatches: count };
    } finally {
      this.running = false;
    }
  }

  /** Drops gradients accumulated since the last update. */
  discardAccumulated(): void {
    this.accumulated = null;
    this.accumulatedCount = 0;
  }

  private async accumulationSessions(): Promise<{ gradient: Session; update: Session }> {
    if (this.accumulation) return this.accumulation;
    if (!this.options) throw new Error('gradient accumulation needs a trainer made by Trainer.create');
    const { graph, layout } = buildGradientGraph(this.options.model, this.options.loss, this.options);
    if (layout.flatSize !== this.layout.flatSize) throw new Error('internal: the gradient graph and the training graph disagree on the parameter layout');
    const gradient = await createSession(graph.toModel({ params: 'input', outputs: gradientOutputNames(layout) }), this.options.session);
    const update = await createSession(buildUpdateGraph(this.params.list(), this.layout).toModel({ params: 'input', outputs: updateOutputNames(this.layout) }), this.options.session);
    this.accumulation = { gradient, update };
    return this.accumulation;
  }

  private async runStep(batch: Readonly<Record<string, HostTensor>>): Promise<StepResult> {
    const feeds: Record<string, HostTensor> = {};
    for (const { name } of this.layout.batchInputs) {
      const t = batch[name];
      if (!t) throw new Error(`trainStep: batch lacks "${name}" (expects ${this.layout.batchInputs.map((b) => b.name).join(', ')})`);
      feeds[name] = t;
    }
    for (const slot of this.layout.trainable) {
      const p = this.byName.get(slot.name)!;
      feeds[slot.name] = { data: p.data, shape: p.shape };
    }
    for (const name of [...this.layout.frozen, ...this.layout.unreached]) {
      const p = this.byName.get(name)!;
      feeds[name] = { data: p.data, shape: p.shape };
    }
    feeds[TRAIN_IO.m] = { data: this.m, shape: [this.m.length] };
    feeds[TRAIN_IO.v] = { data: this.v, shape: [this.v.length] };
    feeds[TRAIN_IO.step] = { data: Float32Array.of(this.stepCount + 1), shape: [] };
    feeds[TRAIN_IO.lr] = { data: Float32Array.of(this.lr), shape: [] };
    const out = await this.session.run(feeds, this.outputNames);
    const loss = (out[TRAIN_IO.loss].data as Float32Array)[0];
    const gradNorm = (out[TRAIN_IO.gradNorm].data as Float32Array)[0];
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      // Keep the old state: a non-finite loss or gradient would poison every parameter, through
      // the clipping factor and the moments, and the next step would find the state already gone.
      const squares = out[TRAIN_IO.gradSquares].data as Float64Array;
      const bad = this.layout.trainable.filter((_, i) => !Number.isFinite(squares[i])).map((s) => s.name);
      const step = this.stepCount + 1;
      const what = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${gradNorm} (loss ${loss})`;
      const which = bad.length > 0 ? `; non-finite gradients in ${bad.length} parameter(s): ${bad.slice(0, 12).join(', ')}${bad.length > 12 ? ', …' : ''}` : '';
      throw new NonFiniteStepError(`trainStep: ${what} at step ${step}; parameters were not updated (step refused, optimizer state kept)${which}`, step, loss, gradNorm, bad);
    }
    for (const slot of this.layout.trainable) this.byName.get(slot.name)!.data = out[TRAIN_IO.next(slot.name)].data as Float32Array;
    this.m = out[TRAIN_IO.nextM].data as Float32Array;
    this.v = out[TRAIN_IO.nextV].data as Float32Array;
    this.stepCount++;
    const metrics: Record<string, number> = {};
    for (const name of this.layout.metrics) metrics[name] = (out[TRAIN_IO.metric(name)].data as Float32Array)[0];
    const forward: Record<string, HostTensor> = {};
    for (const name of this.layout.forwardOutputs) forward[name] = out[TRAIN_IO.forward(name)];
    return {
      loss,
      gradNorm,
      lr: (out[TRAIN_IO.appliedLr].data as Float32Array)[0],
      metrics,
      forward,
    };
  }

  /** A copy of the optimizer state. */
  optimizerState(): OptimizerState {
    return { step: this.stepCount, m: this.m.slice(), v: this.v.slice() };
  }

  /** Replaces the optimizer state (e.g. from a checkpoint); sizes must match the layout. */
  setOptimizerState(state: OptimizerState): void {
    if (state.m.length !== this.layout.flatSize || state.v.length !== this.layout.flatSize) {
      throw new Error(`optimizer state has moments of ${state.m.length}/${state.v.length} values, this model needs ${this.layout.flatSize}`);
    }
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`optimizer step must be an integer >= 0, got ${state.step}`);
    this.m = state.m.slice();
    this.v = state.v.slice();
    this.stepCount = state.step;
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
    if (this.accumulation) {
      await this.accumulation.gradient.dispose();
      await this.accumulation.update.dispose();
      this.accumulation = null;
    }
  }
}
