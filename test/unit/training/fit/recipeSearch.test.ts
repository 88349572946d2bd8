import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calibrate, scaledProbs } from '../../../../src/training/fit/calibration';
import type { RecipeCandidate } from '../../../../src/shared/types';
import { choiceReason, chooseRecipe, pairedZ, RECIPE_MIN_Z, stratifiedSample } from '../../../../src/training/fit/recipeSearch';
import { averageViewProbs, meanOfViews, stackViews } from '../../../../src/training/fit/viewAveraging';
import { seededRandom } from '../../../../src/training/util/random';

describe('averaging the views', () => {
  it('gives the softmax of the mean logit, so a temperature on every view scales the average exactly', () => {
    const random = seededRandom(3);
    const k = 4;
    const n = 50;
    const logits = Array.from({ length: 8 }, () => Float64Array.from({ length: n * k }, () => 4 * (random() - 0.5)));
    const t = 1.7;
    const perView = logits.map((z) => Float32Array.from(scaledProbs(z, k, t)));
    const meanLogit = new Float64Array(n * k);
    for (const z of logits) z.forEach((v, i) => (meanLogit[i] += v / logits.length));
    const expected = scaledProbs(meanLogit, k, t);
    const got = averageViewProbs(perView, k);
    got.forEach((p, i) => assert.ok(Math.abs(p - expected[i]) < 1e-6, `${p} vs ${expected[i]}`));
  });

  it('leaves one view as it is, and calibration fits the averaged output like any other', () => {
    const one = Float32Array.of(0.2, 0.8);
    assert.equal(averageViewProbs([one], 2), one);
    const probs = averageViewProbs([Float32Array.of(0.99, 0.01, 0.02, 0.98), Float32Array.of(0.97, 0.03, 0.1, 0.9)], 2);
    assert.ok(calibrate(probs, [0, 1], 2).temperature > 0);
  });

  it('stacks views row after row and averages their vectors per image', () => {
    const a = { x: Float32Array.of(1, 2, 3, 4), y: Int32Array.of(0, 1), n: 2, featureSize: 2 };
    const b = { x: Float32Array.of(3, 4, 5, 6), y: Int32Array.of(0, 1), n: 2, featureSize: 2 };
    assert.deepEqual(Array.from(stackViews([a, b]).x), [1, 2, 3, 4, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(stackViews([a, b]).y), [0, 1, 0, 1]);
    assert.deepEqual(Array.from(meanOfViews([a, b]).x), [2, 3, 4, 5]);
  });
});

describe('choosing a recipe', () => {
  const scores = (plain: number, flip: number, dihedral: number): RecipeCandidate[] => [
    { recipe: 'plain' as const, views: 1, accuracy: plain },
    { recipe: 'flip' as const, views: 2, accuracy: flip },
    { recipe: 'dihedral' as const, views: 8, accuracy: dihedral },
  ];

  it('takes more views only when they beat the cheaper choice by the margin', () => {
    assert.equal(chooseRecipe(scores(0.905, 0.908, 0.926), 0.005).recipe, 'dihedral');
    assert.equal(chooseRecipe(scores(0.905, 0.907, 0.909), 0.005).recipe, 'plain');
    assert.equal(chooseRecipe(scores(0.9, 0.92, 0.922), 0.005).recipe, 'flip');
  });

  it('says why in one sentence with both figures', () => {
    const s = scores(0.905, 0.908, 0.926);
    assert.equal(choiceReason(chooseRecipe(s, 0.005), s, 0.005), '8 views + TTA chose over plain: 92.6% vs 90.5%');
    const close = scores(0.905, 0.907, 0.909);
    assert.match(
      choiceReason(chooseRecipe(close, 0.005), close, 0.005),
      /^plain kept: 8 views \+ TTA 90\.9% vs 90\.5% is within the 0\.5-point margin$/,
    );
  });

  it('keeps plain when the gain is within the noise of the paired draw, and says so', () => {
    // Flowers, seed 7, on its 500-image sample: 8 views +1.6 points, from 8 more images right than wrong.
    const noisy = scores(0.6287, 0.6367, 0.6447);
    noisy[1].paired = { better: 20, worse: 16 };
    noisy[2].paired = { better: 30, worse: 22 };
    assert.equal(pairedZ(noisy[2]).toFixed(2), (7 / Math.sqrt(52)).toFixed(2));
    assert.equal(chooseRecipe(noisy, 0.005).recipe, 'plain');
    assert.equal(
      choiceReason(chooseRecipe(noisy, 0.005), noisy, 0.005),
      'plain kept: 8 views + TTA 64.5% vs 62.9% is within the noise of the sample (30 images better, 22 worse)',
    );
    // The same gain from one-sided disagreements is real.
    const clear = scores(0.905, 0.908, 0.926);
    clear[1].paired = { better: 4, worse: 3 };
    clear[2].paired = { better: 14, worse: 3 };
    assert.ok(pairedZ(clear[2]) >= RECIPE_MIN_Z);
    assert.equal(chooseRecipe(clear, 0.005).recipe, 'dihedral');
    assert.equal(
      choiceReason(chooseRecipe(clear, 0.005), clear, 0.005),
      '8 views + TTA chose over plain: 92.6% vs 90.5% (14 images better, 3 worse)',
    );
    // A significant flip is kept when 8 views beat it by less than the margin.
    const flip = scores(0.9, 0.93, 0.932);
    flip[1].paired = { better: 20, worse: 5 };
    flip[2].paired = { better: 22, worse: 6 };
    assert.equal(chooseRecipe(flip, 0.005).recipe, 'flip');
  });

  it('samples every class in its share, the same for the same seed', () => {
    const items = Array.from({ length: 1000 }, (_, i) => ({ classIndex: i < 700 ? 0 : 1, i }));
    const a = stratifiedSample(items, 100, 42);
    assert.equal(a.length, 100);
    assert.equal(a.filter((x) => x.classIndex === 0).length, 70);
    assert.deepEqual(a, stratifiedSample(items, 100, 42));
    assert.notDeepEqual(a, stratifiedSample(items, 100, 43));
    assert.equal(stratifiedSample(items.slice(0, 50), 100, 1).length, 50);
  });
});
