import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';

test('same seed gives the same stream; different seeds differ', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xa = Array.from({ length: 100 }, () => a.next());
  const xb = Array.from({ length: 100 }, () => b.next());
  const xc = Array.from({ length: 100 }, () => c.next());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
  assert.ok(xa.every((x) => x >= 0 && x < 1));
});

test('state round-trips and fork does not advance the parent', () => {
  const a = new Rng(7);
  a.next();
  const s = a.getState();
  const f1 = a.fork('objects');
  const f2 = a.fork('objects');
  assert.deepEqual(a.getState(), s);
  assert.equal(f1.next(), f2.next());
  assert.notEqual(a.fork('camera').next(), a.fork('objects').next());
  const v = a.next();
  a.setState(s);
  assert.equal(a.next(), v);
});

test('uniform, int and normal have the expected ranges and moments', () => {
  const r = new Rng(1);
  let sum = 0;
  let sq = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const z = r.normal();
    sum += z;
    sq += z * z;
    const k = r.int(5);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 5);
    const u = r.uniform(-2, 3);
    assert.ok(u >= -2 && u < 3);
  }
  assert.ok(Math.abs(sum / n) < 0.03, `mean ${sum / n}`);
  assert.ok(Math.abs(sq / n - 1) < 0.05, `variance ${sq / n}`);
});

test('bad seeds are refused with the value named', () => {
  assert.throws(() => new Rng(1.5), /integer, got 1.5/);
  assert.throws(() => new Rng(Number.NaN), /got NaN/);
  assert.throws(() => new Rng(0).int(0), /positive integer, got 0/);
});
