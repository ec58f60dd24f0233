import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tokenizer, fnv1a, words } from '../../nn/tokenizer.ts';

test('words: lowercase runs of letters and digits', () => {
  assert.deepEqual(words('Put the Cup, then 2 blocks!'), ['put', 'the', 'cup', 'then', '2', 'blocks']);
  assert.deepEqual(words('  '), []);
});

test('vocabulary is sorted and independent of text order', () => {
  const a = Tokenizer.fromTexts(['stack the block', 'the cup'], { buckets: 4, maxLength: 5 });
  const b = Tokenizer.fromTexts(['the cup', 'Stack THE block'], { buckets: 4, maxLength: 5 });
  assert.deepEqual(a.toJSON(), b.toJSON());
  assert.deepEqual(a.words, ['block', 'cup', 'stack', 'the']);
  assert.equal(a.vocabSize, 1 + 4 + 4);
  assert.deepEqual(a.tokenize('The block'), [4, 1]);
});

test('unknown words hash into the reserved buckets, deterministically', () => {
  const t = Tokenizer.fromTexts(['stack the block'], { buckets: 8, maxLength: 4 });
  const id = t.wordId('jujube');
  assert.equal(id, 1 + 3 + (fnv1a('jujube') % 8));
  assert.ok(id > 3 && id < t.vocabSize);
  assert.equal(t.wordId('jujube'), id);
  // FNV-1a reference values (32-bit offset basis and prime).
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
});

test('encode pads with 0, cuts at maxLength and returns the mask', () => {
  const t = Tokenizer.fromTexts(['a b c'], { buckets: 2, maxLength: 3 });
  const e = t.encode(['a b', 'c b a c']);
  assert.deepEqual(e.shape, [2, 3]);
  assert.deepEqual([...e.ids].map(Number), [1, 2, 0, 3, 2, 1]);
  assert.deepEqual([...e.mask], [1, 1, 0, 1, 1, 1]);
});

test('JSON round trip and errors naming the bad field', () => {
  const t = Tokenizer.fromTexts(['stack the block'], { buckets: 3, maxLength: 6 });
  const back = Tokenizer.fromJSON(JSON.stringify(t));
  assert.deepEqual(back.toJSON(), t.toJSON());
  assert.throws(() => new Tokenizer({ words: ['b', 'a'], buckets: 1, maxLength: 1 }), /sorted and unique/);
  assert.throws(() => new Tokenizer({ words: ['A'], buckets: 1, maxLength: 1 }), /word 0 is "A"/);
  assert.throws(() => new Tokenizer({ words: [], buckets: 0, maxLength: 1 }), /buckets must be an integer >= 1, got 0/);
  assert.throws(() => Tokenizer.fromJSON('{oops'), /not valid JSON/);
});
