// Epoch-level training decisions as plain classes: they see numbers, never tensors, so they are
// unit-testable without tfjs and shared by head training and fine-tuning.
//
// Both monitor the validation LOSS (as Keras does by default). Validation accuracy on the small
// validation sets this product sees moves in coarse steps of 1/n and saturates at 100% while the
// model still gets more or less confident; the loss keeps telling epochs apart, so "best epoch"
// and "plateau" are decided on it.

/** Early stopping on a monitored value (lower is better) with the best epoch remembered. */
export class EarlyStopping {
  /** Best monitored value so far (Infinity before the first epoch). */
  bestValue = Number.POSITIVE_INFINITY;
  /** Epoch number (as given to `update`) of the best value; 0 before the first improvement. */
  bestEpoch = 0;
  private wait = 0;

  /**
   * @param patience epochs without improvement before stopping; 0 = never stop early.
   * @param minDelta an improvement must beat the best by more than this.
   */
  constructor(
    private readonly patience: number,
    private readonly minDelta = 0,
  ) {}

  /** Starts from a known best (e.g. the head stage's best before fine-tuning). */
  seed(epoch: number, value: number): void {
    this.bestEpoch = epoch;
    this.bestValue = value;
    this.wait = 0;
  }

  /** Records one epoch; says whether it is a new best and whether training should stop now. */
  update(epoch: number, value: number): { improved: boolean; stop: boolean } {
    // NaN never improves: a diverged epoch must not become the "best" weights.
    const improved = !Number.isNaN(value) && value < this.bestValue - this.minDelta;
    if (improved) {
      this.bestValue = value;
      this.bestEpoch = epoch;
      this.wait = 0;
    } else {
      this.wait++;
    }
    return { improved, stop: this.patience > 0 && this.wait >= this.patience };
  }
}

/** Reduce-on-plateau: multiply the learning rate by `factor` after `patience` epochs without improvement. */
export class ReduceLrOnPlateau {
  private best = Number.POSITIVE_INFINITY;
  private wait = 0;
  /** The learning rate for the next epoch. */
  lr: number;

  /**
   * @param patience epochs without improvement before reducing; 0 = never reduce.
   * @param minLr the rate never goes below this.
   */
  constructor(
    initialLr: number,
    private readonly factor: number,
    private readonly patience: number,
    private readonly minLr = 0,
    private readonly minDelta = 0,
  ) {
    this.lr = initialLr;
  }

  /** Starts from a known best value (fine-tuning continues after the head stage). */
  seed(value: number): void {
    this.best = value;
    this.wait = 0;
  }

  /** Records one epoch's monitored value and returns the learning rate for the next epoch. */
  update(value: number): number {
    if (!Number.isNaN(value) && value < this.best - this.minDelta) {
      this.best = value;
      this.wait = 0;
      return this.lr;
    }
    this.wait++;
    if (this.patience > 0 && this.wait >= this.patience) {
      this.lr = Math.max(this.lr * this.factor, this.minLr);
      // Like Keras: count afresh after a reduction, so the next one needs `patience` more epochs.
      this.wait = 0;
    }
    return this.lr;
  }
}

/**
 * Class weights inverse to frequency, `n / (k * count[c])` with k the number of classes present
 * (scikit-learn's "balanced"): every class contributes the same total weight and the weights
 * average 1 over the samples. A class absent from `labels` gets weight 0.
 */
export function balancedClassWeights(labels: ArrayLike<number>, numClasses: number): Float32Array {
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  const present = counts.filter((c) => c > 0).length;
  const weights = new Float32Array(numClasses);
  for (let c = 0; c < numClasses; c++) {
    weights[c] = counts[c] > 0 ? labels.length / (present * counts[c]) : 0;
  }
  return weights;
}
