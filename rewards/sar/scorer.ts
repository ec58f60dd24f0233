/**
 * Scoring frames with a SAR network: the stage texts' embeddings are computed once, then each frame
 * costs one image-encoder pass and a few dot products (s+, s-, and sh- = the largest near-miss
 * similarity), turned into u_k by rewards/sar/score.ts.
 *
 * The text table of a task lists, per stage, [positive, negative, near miss 1, near miss 2, ...].
 * A trained scorer is stored as `sar.onnx` (self-contained, loadable by any ONNX Runtime) plus
 * `sar.json` (the tokenizer, the stage texts and the scoring settings it was trained with).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ModelDefinition } from '../../nn/model.ts';
import { createSession, type HostTensor } from '../../nn/runtime.ts';
import { ModelRunner } from '../../nn/runner.ts';
import { Tokenizer, type TokenizerSpec } from '../../nn/tokenizer.ts';
import type { Stage } from '../../sim/task.ts';
import { cosine, stageScore } from './score.ts';

/** Where each stage's texts sit in the text table. */
export interface TextLayout {
  texts: string[];
  /** Per stage: index of its positive text, its negative, and its near misses. */
  stages: { name: string; positive: number; negative: number; nearMisses: number[] }[];
}

/** The text table of a task's stages. */
export function textLayout(stages: readonly Pick<Stage, 'name' | 'texts'>[]): TextLayout {
  const texts: string[] = [];
  const out: TextLayout['stages'] = [];
  for (const s of stages) {
    const positive = texts.push(s.texts.positive) - 1;
    const negative = texts.push(s.texts.negative) - 1;
    const nearMisses = s.texts.nearMisses.map((t) => texts.push(t) - 1);
    out.push({ name: s.name, positive, negative, nearMisses });
  }
  return { texts, stages: out };
}

/** The tokenizer of a task's SAR: the vocabulary of its stage texts. */
export function sarTokenizer(layout: TextLayout): Tokenizer {
  return Tokenizer.fromTexts(layout.texts, { maxLength: 24 });
}

/** What sar.json records next to sar.onnx. */
export interface SarMetadata {
  format: 'evovla.sar';
  task: string;
  imageSize: number;
  embedDim: number;
  tau: number;
  /** The gate it was trained with; `windows`: per-stage windows from the training demos (score.ts GateOptions). */
  gate: { window: number; threshold: number; lookahead?: 0 | 1; stageWindows?: boolean; windows?: number[] };
  alpha: number;
  tokenizer: TokenizerSpec;
  layout: TextLayout;
  nearMissStates: boolean;
}

/** One frame: both cameras' RGB (row-major HWC, uint8) at the scorer's image size. */
export interface FrameImages {
  eye_side: Uint8Array;
  eye_arm: Uint8Array;
}

/** s+, s-, sh- and u_k of one stage for one frame. */
export interface StageScores {
  positive: number;
  negative: number;
  nearMiss: number;
  u: number;
}

type Runner = { run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>>; dispose(): Promise<void> };

/** HWC uint8 -> CHW float 0..1, written at `offset` of `out`. */
export function toChw(rgb: Uint8Array, size: number, out: Float32Array, offset: number): void {
  const n = size * size;
  if (rgb.length !== n * 3) throw new RangeError(`image must be ${size}x${size} RGB (${n * 3} bytes), got ${rgb.length} bytes`);
  for (let i = 0; i < n; i++) {
    out[offset + i] = rgb[i * 3] / 255;
    out[offset + n + i] = rgb[i * 3 + 1] / 255;
    out[offset + 2 * n + i] = rgb[i * 3 + 2] / 255;
  }
}

/** A SAR model ready to score frames. */
export class SarScorer {
  private textEmbedding: Float32Array = new Float32Array(0);
  private readonly tokenizer: Tokenizer;

  private constructor(
    private readonly runner: Runner,
    readonly meta: SarMetadata,
  ) {
    this.tokenizer = Tokenizer.fromJSON(meta.tokenizer);
  }

  /** A scorer over a network's current weights (used while training). */
  static async fromModel(model: ModelDefinition, meta: SarMetadata, threads = 1): Promise<SarScorer> {
    const s = new SarScorer(await ModelRunner.create(model, { threads }), meta);
    await s.refreshTexts();
    return s;
  }

  /** Loads `sar.onnx` and the `sar.json` beside it. */
  static async load(onnxPath: string, threads = 1): Promise<SarScorer> {
    const jsonPath = join(dirname(onnxPath), 'sar.json');
    let meta: SarMetadata;
    try {
      meta = JSON.parse(readFileSync(jsonPath, 'utf8')) as SarMetadata;
    } catch (err) {
      throw new Error(`cannot read the SAR metadata ${jsonPath} that belongs with ${onnxPath}: ${(err as Error).message}`);
    }
    if (meta.format !== 'evovla.sar') throw new Error(`${jsonPath}: format must be 'evovla.sar', got ${JSON.stringify(meta.format)}`);
    const s = new SarScorer(await createSession(onnxPath, { threads }), meta);
    await s.refreshTexts();
    return s;
  }

  /** Recomputes the text embeddings (after the weights changed). */
  async refreshTexts(): Promise<void> {
    const enc = this.tokenizer.encode(this.meta.layout.texts);
    const size = this.meta.imageSize;
    const blank = { data: new Float32Array(3 * size * size), shape: [1, 3, size, size] };
    const out = await this.runner.run(
      { image_eye_side: blank, image_eye_arm: blank, text_ids: { data: enc.ids, shape: enc.shape }, text_mask: { data: enc.mask, shape: enc.shape } },
      ['text_embedding'],
    );
    this.textEmbedding = out.text_embedding.data as Float32Array;
  }

  /** Image embeddings [B, D] of frames. */
  async embed(frames: readonly FrameImages[]): Promise<Float32Array> {
    const size = this.meta.imageSize;
    const per = 3 * size * size;
    const side = new Float32Array(frames.length * per);
    const arm = new Float32Array(frames.length * per);
    frames.forEach((f, i) => {
      toChw(f.eye_side, size, side, i * per);
      toChw(f.eye_arm, size, arm, i * per);
    });
    const enc = this.tokenizer.encode([this.meta.layout.texts[0]]);
    const out = await this.runner.run(
      {
        image_eye_side: { data: side, shape: [frames.length, 3, size, size] },
        image_eye_arm: { data: arm, shape: [frames.length, 3, size, size] },
        text_ids: { data: enc.ids, shape: enc.shape },
        text_mask: { data: enc.mask, shape: enc.shape },
      },
      ['image_embedding'],
    );
    return out.image_embedding.data as Float32Array;
  }

  /** s+, s-, sh-, u_k of `stage` for row `row` of `embeddings`. */
  scores(embeddings: Float32Array, row: number, stage: number): StageScores {
    const d = this.meta.embedDim;
    const st = this.meta.layout.stages[stage];
    if (!st) throw new RangeError(`stage must be in 0..${this.meta.layout.stages.length - 1}, got ${stage}`);
    const sim = (t: number) => cosine(embeddings, this.textEmbedding, row * d, t * d, d);
    const positive = sim(st.positive);
    const negative = sim(st.negative);
    const nearMiss = Math.max(...st.nearMisses.map(sim));
    return { positive, negative, nearMiss, u: stageScore(positive, negative, nearMiss, this.meta.tau) };
  }

  async dispose(): Promise<void> {
    await this.runner.dispose();
  }
}
