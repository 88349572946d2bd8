// The base models a user can pick in the panel, by id and display name. The extension host may not
// import src/training, so this list repeats the ids and names of MODEL_REGISTRY
// (src/training/modelRegistry.ts); test/unit/modelRegistry.test.ts keeps the two in step.

export interface ModelChoice {
  id: string;
  name: string;
}

/** Every built-in base model, default first, as in MODEL_REGISTRY. */
export const MODEL_CHOICES: readonly ModelChoice[] = [
  { id: 'mobilenet_v2_0.35', name: 'MobileNetV2 0.35 (224 px, ImageNet)' },
  { id: 'mobilenet_v2_0.50', name: 'MobileNetV2 0.50 (224 px, ImageNet)' },
  { id: 'mobilenet_v2_0.75', name: 'MobileNetV2 0.75 (224 px, ImageNet)' },
  { id: 'mobilenet_v2_1.00', name: 'MobileNetV2 1.00 (224 px, ImageNet)' },
  { id: 'mobilenet_v1_0.25', name: 'MobileNetV1 0.25 (224 px, ImageNet)' },
  { id: 'mobilenet_v1_0.50', name: 'MobileNetV1 0.50 (224 px, ImageNet)' },
  { id: 'mobilenet_v1_0.75', name: 'MobileNetV1 0.75 (224 px, ImageNet)' },
  { id: 'mobilenet_v1_1.0', name: 'MobileNetV1 1.0 (224 px, ImageNet)' },
];

/** The choice with this id, or undefined (for an id the webview made up). */
export function findModelChoice(id: string, choices: readonly ModelChoice[] = MODEL_CHOICES): ModelChoice | undefined {
  return choices.find((c) => c.id === id);
}
