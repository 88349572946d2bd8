import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockChecksum, blockChecksum, checksum64, seedOf } from '../../../../src/training/util/checksum';

/** Deterministic bytes that look like float32 feature vectors. */
function vectors(bytes: number): Uint8Array {
  return new Uint8Array(Float32Array.from({ length: bytes / 4 }, (_, i) => Math.sin(i) * 3).buffer);
}

test('the checksum is 16 hex digits, the same for the same bytes wherever they sit in memory', () => {
  const data = vectors(5120);
  const sum = checksum64(data);
  assert.match(sum, /^[0-9a-f]{16}$/);
  const shifted = new Uint8Array(data.length + 3);
  shifted.set(data, 3);
  assert.equal(checksum64(shifted.subarray(3)), sum, 'an unaligned view checks the same');
  assert.equal(checksum64(Buffer.from(data)), sum);
  // A Buffer's slice is a view, not a copy: an unaligned Buffer must check the same too (a file read, past its first line).
  const file = Buffer.concat([Buffer.from('abc'), data]);
  assert.equal(checksum64(file.subarray(3)), sum, 'an unaligned Buffer checks the same');
});

test('every single flipped bit, a truncation, an extension and another seed change the checksum', () => {
  const data = vectors(1024 + 3);
  const sum = checksum64(data);
  for (let bit = 0; bit < data.length * 8; bit++) {
    const flipped = Uint8Array.from(data);
    flipped[bit >> 3] ^= 1 << (bit & 7);
    assert.notEqual(checksum64(flipped), sum, `bit ${bit}`);
  }
  assert.notEqual(checksum64(data.subarray(0, data.length - 1)), sum);
  assert.notEqual(checksum64(Uint8Array.from([...data, 0])), sum);
  assert.notEqual(checksum64(data, seedOf('ab'.repeat(32))), sum);
});

test('two bits flipped in the same position of two words do not cancel out', () => {
  const data = vectors(4096);
  const sum = checksum64(data);
  for (const bit of [0, 7, 31]) {
    const flipped = Uint8Array.from(data);
    flipped[(bit >> 3) + 16] ^= 1 << (bit & 7);
    flipped[(bit >> 3) + 16 * 9] ^= 1 << (bit & 7);
    assert.notEqual(checksum64(flipped), sum, `bit ${bit} of two words of the same lane`);
  }
});

test('the streamed block checksum equals the one-shot one, however the bytes are cut', () => {
  const data = vectors(3 * (1 << 20) + 4100);
  const whole = blockChecksum(data);
  for (const piece of [1, 4096, 100_003, 1 << 20, 5 << 20]) {
    const stream = new BlockChecksum();
    for (let at = 0; at < data.length; at += piece) stream.update(data.subarray(at, at + piece));
    assert.equal(stream.digest(), whole, `pieces of ${piece} bytes`);
  }
  assert.equal(new BlockChecksum().digest(), blockChecksum(new Uint8Array(0)));
});
