/** Visual randomisation: seeded, within its ranges, and whole bodies shift together. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../../sim/rng.ts';
import { offsetColor, parseVisualRandomization, sampleVisuals } from '../../../sim/render/randomize.ts';

const labels = ['background', 'block', 'robot/link1', 'ground'];

describe('sampleVisuals', () => {
  const config = parseVisualRandomization({
    keyLightScale: [0.5, 1.5],
    keyLightAzimuthDeg: 30,
    objectColorJitter: 0.2,
    robotColorJitter: 0.05,
    cameraPositionJitter: 0.01,
    cameraRotationJitterDeg: 2,
  });

  it('gives the same sample for the same seed and another for another seed', () => {
    const a = sampleVisuals(new Rng(3), config, labels, ['eye_side']);
    const b = sampleVisuals(new Rng(3), config, labels, ['eye_side']);
    const c = sampleVisuals(new Rng(4), config, labels, ['eye_side']);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('stays within the configured ranges and leaves unconfigured things alone', () => {
    for (let seed = 0; seed < 50; seed++) {
      const s = sampleVisuals(new Rng(seed), config, labels, ['eye_side', 'eye_arm']);
      assert.ok(s.keyLightScale >= 0.5 && s.keyLightScale < 1.5);
      assert.equal(s.ambientLightScale, 1);
      assert.ok(Math.abs(s.keyLightAzimuthRad) <= (30 * Math.PI) / 180);
      assert.ok(s.colorOffsets.block.every((x) => Math.abs(x) <= 0.2));
      assert.ok(s.colorOffsets['robot/link1'].every((x) => Math.abs(x) <= 0.05));
      // No background jitter configured: background and ground keep their colours.
      assert.equal(s.colorOffsets.background, undefined);
      assert.equal(s.colorOffsets.ground, undefined);
      for (const cam of ['eye_side', 'eye_arm']) {
        const o = s.cameraOffsets[cam];
        assert.ok(o.p.every((x) => Math.abs(x) <= 0.01));
        const angle = 2 * Math.acos(Math.min(1, Math.abs(o.q[3])));
        assert.ok(angle <= ((2 * Math.sqrt(3)) * Math.PI) / 180 + 1e-9, `rotation ${angle} rad`);
      }
    }
  });

  it('an empty config changes nothing', () => {
    const s = sampleVisuals(new Rng(1), parseVisualRandomization({}), labels, ['eye_side']);
    assert.deepEqual(s, { keyLightScale: 1, ambientLightScale: 1, keyLightAzimuthRad: 0, colorOffsets: {}, cameraOffsets: {} });
  });

  it('offsets colours with clamping, so a two-tone body stays two-tone', () => {
    assert.deepEqual(offsetColor([0.1, 0.5, 0.95], [-0.2, 0.1, 0.1]), [0, 0.6, 1]);
    assert.deepEqual(offsetColor([0.2, 0.2, 0.2], undefined), [0.2, 0.2, 0.2]);
  });

  it('rejects bad ranges naming the key', () => {
    assert.throws(() => parseVisualRandomization({ keyLightScale: [2, 1] }), /visualRandomization\.keyLightScale/);
    assert.throws(() => parseVisualRandomization({ colourJitter: 0.1 }), /visualRandomization/);
    assert.throws(() => parseVisualRandomization({ objectColorJitter: 2 }), /objectColorJitter/);
  });
});
