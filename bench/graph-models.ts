/**
 * The two models `npm run bench:graph` times (and the PyTorch twin mirrors), shared with the tests
 * that check the float32 training path against float64.
 *   mlp:         MLP 256-256-256-8 (ReLU), MSE
 *   transformer: the policy-sized model: 64 image patches (64x64 RGB, 8x8 patches) + 16 text tokens,
 *                width 128, 4 pre-norm blocks (4 heads, MLP 512, GELU), mean pool, MSE on a 7-D action
 */
import { Rng } from '../sim/rng.ts';
import { Embedding, LayerNorm, Linear, MLP, TransformerBlock, keyMaskBias, patchify } from '../nn/layers.ts';
import { mse } from '../nn/losses.ts';
import type { ModelDefinition } from '../nn/model.ts';
import * as op from '../nn/ops.ts';
import { ParamSet, init } from '../nn/params.ts';
import type { HostTensor } from '../nn/runtime.ts';
import type { LossFn } from '../nn/train-graph.ts';

/** A benchmark model: definition, loss and a seeded batch maker. */
export interface BenchModel {
  model: ModelDefinition;
  loss: LossFn;
  batch: (size: number, seed: number) => Record<string, HostTensor>;
}

export function mlpBenchModel(): BenchModel {
  const params = new ParamSet(1);
  const net = new MLP(params, 'mlp', [256, 256, 256, 8], 'relu');
  return {
    model: { params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 256])) }) },
    loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 8])) }),
    batch: (b, seed) => {
      const rng = new Rng(seed);
      return {
        x: { data: Float32Array.from({ length: b * 256 }, () => rng.normal()), shape: [b, 256] },
        t: { data: Float32Array.from({ length: b * 8 }, () => rng.normal()), shape: [b, 8] },
      };
    },
  };
}

export function transformerBenchModel(): BenchModel {
  const width = 128;
  const textLen = 16;
  const patches = 64;
  const params = new ParamSet(3);
  const patchEmbed = new Linear(params, 'patch', 3 * 8 * 8, width);
  const tok = new Embedding(params, 'tok', 512, width);
  const pos = params.add('pos', [patches + textLen, width], init.truncatedNormal(0.02), { decay: false });
  const blocks = Array.from({ length: 4 }, (_, i) => new TransformerBlock(params, `blk${i}`, width, 4, 4, 'gelu'));
  const lnf = new LayerNorm(params, 'lnf', width);
  const head = new Linear(params, 'action', width, 7);
  return {
    model: {
      params,
      forward: (g) => {
        const image = patchEmbed.apply(patchify(g.input('image', ['B', 3, 64, 64]), 8));
        const text = tok.apply(g.input('text', ['B', textLen], 'int64'));
        const textMask = g.input('text_mask', ['B', textLen]);
        // Image patches are always attended; text padding is masked.
        const keyMask = op.pad(textMask, [0, patches, 0, 0], 1);
        let h = op.add(op.concat([image, text], 1), g.param(pos));
        const bias = keyMaskBias(keyMask);
        for (const blk of blocks) h = blk.apply(h, bias);
        return { action: head.apply(op.reduceMean(lnf.apply(h), [1])) };
      },
    },
    loss: (g, o) => ({ loss: mse(o.action, g.input('target', ['B', 7])) }),
    batch: (b, seed) => {
      const rng = new Rng(seed);
      return {
        image: { data: Float32Array.from({ length: b * 3 * 64 * 64 }, () => rng.next()), shape: [b, 3, 64, 64] },
        text: { data: BigInt64Array.from({ length: b * textLen }, () => BigInt(rng.int(512))), shape: [b, textLen] },
        text_mask: { data: Float32Array.from({ length: b * textLen }, (_, i) => (i % textLen < 10 ? 1 : 0)), shape: [b, textLen] },
        target: { data: Float32Array.from({ length: b * 7 }, () => rng.normal()), shape: [b, 7] },
      };
    },
  };
}
