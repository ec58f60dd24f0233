/**
 * The policy's instruction tokenizer: nn/tokenizer.ts's word tokenizer with the vocabulary of every
 * registered task's instruction and stage texts. The tokenizer lives in nn/ so that rewards/ (which
 * may not import policy/) builds the very same ids; exported models store it in their metadata
 * (`evovla.tokenizer`), so a model keeps its vocabulary even if task texts change later.
 */
import { Tokenizer } from '../../nn/tokenizer.ts';
import { TASKS } from '../../tasks/index.ts';

export { Tokenizer, words, fnv1a, type TokenizerSpec } from '../../nn/tokenizer.ts';

/** Every instruction and stage text of the registered tasks. */
export function taskTexts(): string[] {
  const out: string[] = [];
  for (const task of Object.values(TASKS)) {
    out.push(task.instruction);
    for (const s of task.stages) out.push(s.texts.positive, s.texts.negative, ...s.texts.nearMisses);
  }
  return out;
}

/** The default tokenizer: vocabulary from `taskTexts()`, 64 hash buckets, length 24. */
export function taskTokenizer(options: { buckets?: number; maxLength?: number } = {}): Tokenizer {
  return Tokenizer.fromTexts(taskTexts(), options);
}
