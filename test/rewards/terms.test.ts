import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../sim/config.ts';
import { parseRewardConfig } from '../../rewards/config.ts';
import { combineRewards, rewardLogRecord, sumRewardLogs, TERM_NAMES } from '../../rewards/terms.ts';

test('default config: rho 0.6 and unit scales give r = ext + 0.6 (stage + cur + prog)', () => {
  const b = combineRewards({ ext: 1, stage: 0.2, cur: 0.05, prog: 0.01 });
  assert.ok(Math.abs(b.total - (1 + 0.6 * 0.26)) < 1e-12);
  assert.equal(b.extrinsic, 1);
  assert.ok(Math.abs(b.intrinsic - 0.26) < 1e-12);
});

test('scales and rho come from config, each term scaled before the sum', () => {
  const cfg = parseRewardConfig({ rho: 0.5, scales: { cur: 0, stage: 2 } });
  const b = combineRewards({ ext: 0, stage: 0.1, cur: 100, prog: 0.4 }, cfg);
  assert.deepEqual(b.scaled, { ext: 0, stage: 0.2, cur: 0, prog: 0.4 });
  assert.ok(Math.abs(b.total - 0.5 * 0.6) < 1e-12);
});

test('every term is in the log record, scaled and unscaled, and episode sums add up', () => {
  const a = rewardLogRecord(combineRewards({ ext: 0, stage: 0.1, cur: 0.2, prog: 0 }));
  const b = rewardLogRecord(combineRewards({ ext: 1, stage: -0.1, cur: 0.1, prog: 0.3 }));
  for (const t of TERM_NAMES) {
    assert.ok(`reward/${t}` in a && `reward/${t}_scaled` in a, t);
  }
  const s = sumRewardLogs([a, b]);
  assert.ok(Math.abs(s['reward/cur'] - 0.3) < 1e-12);
  assert.ok(Math.abs(s['reward/total'] - (a['reward/total'] + b['reward/total'])) < 1e-12);
});

test('a non-finite term is refused by name', () => {
  assert.throws(() => combineRewards({ ext: 0, stage: Number.NaN, cur: 0, prog: 0 }), /'stage'.*NaN/);
});

test('bad config names the key path and the value', () => {
  assert.throws(() => parseRewardConfig({ rho: 2 }), (e: Error) => e instanceof ConfigError && /'rho'/.test(e.message) && /2/.test(e.message));
  assert.throws(() => parseRewardConfig({ scales: { curiosity: 1 } }), (e: Error) => /scales\.curiosity/.test(e.message));
  assert.throws(() => parseRewardConfig({ scales: { cur: 'x' } }), (e: Error) => /scales\.cur/.test(e.message));
});
