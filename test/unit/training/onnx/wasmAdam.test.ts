import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adamReference, createAdamBuffers } from '../../../../src/training/onnx/wasmAdam';
import { seededRandom } from '../../../../src/training/util/random';

/** Fills parameters, moments and (per step) gradients the same way in several buffer sets. */
function fill(sets: { params: Float32Array; m: Float32Array; v: Float32Array }[], n: number): void {
  for (const set of sets) {
    const random = seededRandom(3);
    for (let i = 0; i < n; i++) {
      set.params[i] = random() - 0.5;
      set.m[i] = (random() - 0.5) * 0.02;
      set.v[i] = random() * 1e-3;
    }
  }
}

describe('the fused Adam update', () => {
  it('assembles and runs on WebAssembly SIMD here, value for value the float32 reference, over a size that is not a multiple of 4', () => {
    const n = 1283;
    const simd = createAdamBuffers(n, 'simd');
    const js = createAdamBuffers(n, 'js');
    assert.equal(simd.kind, 'simd');
    assert.equal(js.kind, 'js');
    assert.equal(simd.params.length, 1284, 'padded to whole SIMD lanes');
    fill([simd, js], n);
    const before = simd.params.slice();
    for (let step = 1; step <= 6; step++) {
      const random = seededRandom(100 + step);
      for (let i = 0; i < n; i++) simd.grad[i] = js.grad[i] = step === 3 && i % 5 === 0 ? 0 : (random() - 0.5) * 0.01;
      const [scale, eps] = [-1e-3 * step, 1e-7 / step];
      simd.update(n, 0.9, 0.999, scale, eps);
      js.update(n, 0.9, 0.999, scale, eps);
    }
    assert.deepEqual(simd.params, js.params);
    assert.deepEqual(simd.m, js.m);
    assert.deepEqual(simd.v, js.v);
    assert.ok(
      simd.params.some((p, i) => Math.abs(p - before[i]) > 1e-3),
      'the weights moved',
    );
    assert.equal(simd.params[n], 0, 'the padding stays zero');
  });

  it('is the Adam step: one update from zero moments moves each weight by -lr·sign(g) (bias-corrected first step)', () => {
    const n = 8;
    const b = createAdamBuffers(n);
    const g = [0.5, -0.25, 1e-3, -2, 0, 3, -1e-4, 0.1];
    b.grad.set(g);
    // Step 1 at lr 0.01: with m̃ = g and ṽ = g², scale = -lr·c1·(1-β1)/s and eps = ε/s, s = sqrt(c2·(1-β2)) = 1.
    const lr = 0.01;
    b.update(n, 0.9, 0.999, -lr * (1 / (1 - 0.9)) * (1 - 0.9), 1e-7);
    g.forEach((gi, i) => {
      const expected = gi === 0 ? 0 : -lr * Math.sign(gi) * (Math.abs(gi) / (Math.abs(gi) + 1e-7));
      assert.ok(Math.abs(b.params[i] - expected) < 1e-7, `weight ${i}: ${b.params[i]} vs ${expected}`);
    });
    assert.deepEqual(Array.from(b.m.subarray(0, n)), g.map(Math.fround));
  });

  it('keeps the reference in float32 at every operation', () => {
    const p = Float32Array.of(1);
    const m = Float32Array.of(0);
    const v = Float32Array.of(0);
    adamReference(p, m, v, Float32Array.of(1 / 3), 1, 0.9, 0.999, 0.1, 1e-7);
    assert.equal(m[0], Math.fround(1 / 3));
    assert.equal(
      p[0],
      Math.fround(
        1 +
          Math.fround(
            Math.fround(Math.fround(1 / 3) * Math.fround(0.1)) /
              Math.fround(Math.fround(Math.sqrt(Math.fround(Math.fround(1 / 3) * Math.fround(1 / 3)))) + Math.fround(1e-7)),
          ),
      ),
    );
  });
});
