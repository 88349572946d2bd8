// Small shape checks the protocol guards are built from. A message crosses a process or a webview
// boundary as JSON, so each guard checks what the receiver reads before it trusts the type.

/** A plain object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string. */
export function isString(value: unknown): value is string {
  return typeof value === 'string';
}

/** A boolean. */
export function isBoolean(value: unknown): value is boolean {
  return typeof value === 'boolean';
}

/** A finite number. */
export function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/**
 * A measured value as it arrives through JSON: NaN and ±Infinity (a diverged loss, an unknown ETA)
 * are serialised as `null`, and the message is still worth showing.
 */
export function isMeasure(value: unknown): value is number | null {
  return value === null || typeof value === 'number';
}

/** One of `allowed`. */
export function isOneOf<T extends string>(value: unknown, allowed: readonly T[]): value is T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value);
}

/** Absent, or passing `check`. */
export function isOptional<T>(value: unknown, check: (v: unknown) => v is T): value is T | undefined {
  return value === undefined || check(value);
}

/** An array whose every element passes `check`. */
export function isArrayOf<T>(value: unknown, check: (v: unknown) => v is T): value is T[] {
  return Array.isArray(value) && value.every((v) => check(v));
}
