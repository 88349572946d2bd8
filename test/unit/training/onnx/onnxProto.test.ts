// The hand-written protobuf writer behind every exported .onnx file: the bytes are checked two
// ways, by onnxruntime (which must load and run what the writer produces and give the right
// numbers) and against protobuf bytes worked out by hand for the edge cases of the wire format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxDataType, encodeOnnxModel, type OnnxGraph, type OnnxModel, type OnnxNode } from '../../../../src/training/onnx/onnxProto';

const EMPTY_GRAPH: OnnxGraph = { name: '', nodes: [], initializers: [], inputs: [], outputs: [] };

function model(graph: Partial<OnnxGraph>, overrides: Partial<OnnxModel> = {}): OnnxModel {
  return {
    irVersion: 7,
    opsetVersion: 13,
    producerName: 'image-trainer-test',
    producerVersion: '1',
    graph: { ...EMPTY_GRAPH, ...graph },
    ...overrides,
  };
}

const ascii = (s: string): number[] => [...Buffer.from(s, 'utf8')];

/** Where `needle` occurs in `haystack` as a contiguous run of bytes, or -1. */
function indexOfBytes(haystack: Uint8Array, needle: number[]): number {
  return Buffer.from(haystack).indexOf(Buffer.from(needle));
}

function assertContains(bytes: Uint8Array, needle: number[], what: string): void {
  assert.ok(
    indexOfBytes(bytes, needle) >= 0,
    `${what}: expected bytes ${Buffer.from(needle).toString('hex')} in ${Buffer.from(bytes).toString('hex')}`,
  );
}

/** The bytes of a model with an empty graph, empty names and the given IR version, worked out by hand. */
function minimalModelBytes(irVersionVarint: number[]): number[] {
  // prettier-ignore
  return [
    0x08, ...irVersionVarint, // 1: ir_version, varint
    0x12, 0x00, // 2: producer_name, empty string
    0x1a, 0x00, // 3: producer_version, empty string
    0x3a, 0x02, 0x12, 0x00, // 7: graph { 2: name "" }
    0x42, 0x04, 0x0a, 0x00, 0x10, 0x0d, // 8: opset_import { 1: domain "", 2: version 13 }
  ];
}

function minimalModel(irVersion: number): Uint8Array {
  return encodeOnnxModel(model({}, { irVersion, producerName: '', producerVersion: '' }));
}

test('varints are written in 7-bit groups, least significant first, with the high bit marking continuation', () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [1, [0x01]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [16_383, [0xff, 0x7f]],
    [16_384, [0x80, 0x80, 0x01]],
    [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x10]],
    [Number.MAX_SAFE_INTEGER, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  for (const [value, varint] of cases) {
    assert.deepEqual([...minimalModel(value)], minimalModelBytes(varint), `ir_version ${value}`);
  }
});

test('a negative int64 is written as its 64-bit two’s complement, ten bytes long', () => {
  assert.deepEqual([...minimalModel(-1)], minimalModelBytes([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
  assert.deepEqual([...minimalModel(-2)], minimalModelBytes([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
});

test('an empty graph with empty names is still a complete model message', () => {
  assert.deepEqual([...minimalModel(7)], minimalModelBytes([0x07]));
});

test('strings are UTF-8 with a byte length, and a doc string and metadata are written only when given', () => {
  const plain = encodeOnnxModel(model({}, { producerName: 'é', producerVersion: '' }));
  assertContains(plain, [0x12, 0x02, 0xc3, 0xa9], 'a two-byte UTF-8 character has length 2');
  assert.equal(indexOfBytes(plain, [0x32]), -1, 'no doc_string field without a doc string');
  assert.equal(indexOfBytes(plain, [0x72]), -1, 'no metadata_props field without metadata');

  const long = 'x'.repeat(200);
  const documented = encodeOnnxModel(model({}, { docString: long, metadata: { labels: '["a","b"]', empty: '' } }));
  assertContains(documented, [0x32, 0xc8, 0x01, ...ascii(long)], 'a 200-byte doc string has a two-byte length');
  assertContains(documented, [0x72, 0x13, 0x0a, 0x06, ...ascii('labels'), 0x12, 0x09, ...ascii('["a","b"]')], 'metadata entry');
  assertContains(documented, [0x72, 0x09, 0x0a, 0x05, ...ascii('empty'), 0x12, 0x00], 'metadata entry with an empty value');
});

test('float and int64 initializers carry their dims, type, name and little-endian raw bytes', () => {
  const bytes = encodeOnnxModel(
    model({
      initializers: [
        { name: 'w', dims: [2], dataType: OnnxDataType.float, data: new Float32Array([1.5, -2]) },
        { name: 'i', dims: [2], dataType: OnnxDataType.int64, data: new BigInt64Array([-1n, 5n]) },
        { name: 's', dims: [], dataType: OnnxDataType.uint8, data: new Uint8Array([255]) },
      ],
    }),
  );
  // graph field 5 (initializer): dims packed (1), data_type (2), name (8), raw_data (9)
  assertContains(
    bytes,
    [0x2a, 0x12, 0x0a, 0x01, 0x02, 0x10, 0x01, 0x42, 0x01, ...ascii('w'), 0x4a, 0x08, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0],
    'float tensor [1.5, -2]',
  );
  // prettier-ignore
  const int64Tensor = [
    0x2a, 0x1a, 0x0a, 0x01, 0x02, 0x10, 0x07, 0x42, 0x01, ...ascii('i'), 0x4a, 0x10,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  ];
  assertContains(bytes, int64Tensor, 'int64 tensor [-1, 5]');
  assertContains(bytes, [0x2a, 0x0a, 0x0a, 0x00, 0x10, 0x02, 0x42, 0x01, ...ascii('s'), 0x4a, 0x01, 0xff], 'uint8 scalar: empty dims');
});

test('a view into a larger buffer writes only the bytes of the view', () => {
  const backing = new Float32Array([9, 9, 1, 2, 9]);
  const bytes = encodeOnnxModel(
    model({ initializers: [{ name: 'v', dims: [2], dataType: OnnxDataType.float, data: backing.subarray(2, 4) }] }),
  );
  assertContains(bytes, [0x42, 0x01, ...ascii('v'), 0x4a, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40], 'raw data of [1, 2]');
});

test('attributes of every kind carry their value and their type code', () => {
  const node: OnnxNode = {
    opType: 'Op',
    name: 'n',
    inputs: ['a', ''],
    outputs: ['b'],
    attributes: [
      { name: 'alpha', kind: 'float', value: 0.5 },
      { name: 'axis', kind: 'int', value: -1 },
      { name: 'mode', kind: 'string', value: '' },
      { name: 'perm', kind: 'ints', value: [0, 3, 1, 300] },
      { name: 'axes', kind: 'ints', value: [-1] },
    ],
  };
  const bytes = encodeOnnxModel(model({ nodes: [node] }));
  // attribute: name (1), f (2, fixed32) / i (3) / s (4) / ints (8, packed), type (20: a0 01)
  assertContains(bytes, [0x2a, 0x0f, 0x0a, 0x05, ...ascii('alpha'), 0x15, 0x00, 0x00, 0x00, 0x3f, 0xa0, 0x01, 0x01], 'float');
  assertContains(
    bytes,
    [0x2a, 0x14, 0x0a, 0x04, ...ascii('axis'), 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xa0, 0x01, 0x02],
    'negative int',
  );
  assertContains(bytes, [0x2a, 0x0b, 0x0a, 0x04, ...ascii('mode'), 0x22, 0x00, 0xa0, 0x01, 0x03], 'empty string');
  assertContains(bytes, [0x2a, 0x10, 0x0a, 0x04, ...ascii('perm'), 0x42, 0x05, 0x00, 0x03, 0x01, 0xac, 0x02, 0xa0, 0x01, 0x07], 'ints');
  assertContains(
    bytes,
    [0x2a, 0x15, 0x0a, 0x04, ...ascii('axes'), 0x42, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xa0, 0x01, 0x07],
    'negative ints',
  );
  // node: inputs (1, an empty name for an absent optional input), outputs (2), name (3), op_type (4)
  assertContains(bytes, [0x0a, 0x01, ...ascii('a'), 0x0a, 0x00, 0x12, 0x01, ...ascii('b'), 0x1a, 0x01, ...ascii('n'), 0x22, 0x02], 'node');
});

test('graph inputs and outputs carry element type and shape, with symbolic and numeric dimensions', () => {
  const bytes = encodeOnnxModel(model({ inputs: [{ name: 'x', elemType: OnnxDataType.float, shape: ['batch', 300] }] }));
  // value_info { name, type { tensor_type { elem_type, shape { dim { dim_param } dim { dim_value } } } } }
  const dims = [0x0a, 0x07, 0x12, 0x05, ...ascii('batch'), 0x0a, 0x03, 0x08, 0xac, 0x02];
  const shape = [0x12, dims.length, ...dims];
  const tensorType = [0x08, 0x01, ...shape];
  const type = [0x0a, tensorType.length, ...tensorType];
  const valueInfo = [0x0a, 0x01, ...ascii('x'), 0x12, type.length, ...type];
  assertContains(bytes, [0x5a, valueInfo.length, ...valueInfo], 'graph input (field 11)');
});

test('onnxruntime loads a MatMul + Add graph written by the writer and computes x·W + b', async () => {
  const W = new Float32Array([1, 2, 3, 4, 5, 6]); // 2×3
  const b = new Float32Array([0.5, -1, 100]);
  const bytes = encodeOnnxModel(
    model({
      name: 'affine',
      nodes: [
        { opType: 'MatMul', name: 'mm', inputs: ['x', 'W'], outputs: ['h'] },
        { opType: 'Add', name: 'add', inputs: ['h', 'b'], outputs: ['y'] },
      ],
      initializers: [
        { name: 'W', dims: [2, 3], dataType: OnnxDataType.float, data: W },
        { name: 'b', dims: [3], dataType: OnnxDataType.float, data: b },
      ],
      inputs: [{ name: 'x', elemType: OnnxDataType.float, shape: ['batch', 2] }],
      outputs: [{ name: 'y', elemType: OnnxDataType.float, shape: ['batch', 3] }],
    }),
  );
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    assert.deepEqual(session.inputNames, ['x']);
    assert.deepEqual(session.outputNames, ['y']);
    const x = new ort.Tensor('float32', new Float32Array([1, 2, -3, 0.25]), [2, 2]);
    const { y } = await session.run({ x });
    assert.deepEqual(y.dims, [2, 3]);
    // [1, 2]·W = [9, 12, 15]; [-3, 0.25]·W = [-2, -4.75, -7.5]
    assert.deepEqual([...(y.data as Float32Array)], [9.5, 11, 115, -1.5, -5.75, 92.5]);
  } finally {
    await session.release();
  }
});

test('onnxruntime reads float and int attributes and a negative int64 initializer as written', async () => {
  // Gemm(x, W, alpha=0.5, transB=1) then Reshape to [-1] (the -1 is an int64 initializer).
  const bytes = encodeOnnxModel(
    model({
      nodes: [
        {
          opType: 'Gemm',
          name: 'gemm',
          inputs: ['x', 'W'],
          outputs: ['g'],
          attributes: [
            { name: 'alpha', kind: 'float', value: 0.5 },
            { name: 'transB', kind: 'int', value: 1 },
          ],
        },
        { opType: 'Reshape', name: 'flat', inputs: ['g', 'shape'], outputs: ['y'] },
        { opType: 'Transpose', name: 't', inputs: ['x'], outputs: ['xt'], attributes: [{ name: 'perm', kind: 'ints', value: [1, 0] }] },
      ],
      initializers: [
        { name: 'W', dims: [3, 2], dataType: OnnxDataType.float, data: new Float32Array([1, 0, 0, 1, 1, 1]) },
        { name: 'shape', dims: [1], dataType: OnnxDataType.int64, data: new BigInt64Array([-1n]) },
      ],
      inputs: [{ name: 'x', elemType: OnnxDataType.float, shape: [2, 2] }],
      outputs: [
        { name: 'y', elemType: OnnxDataType.float, shape: [6] },
        { name: 'xt', elemType: OnnxDataType.float, shape: [2, 2] },
      ],
    }),
  );
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const x = new ort.Tensor('float32', new Float32Array([2, 4, 6, 8]), [2, 2]);
    const { y, xt } = await session.run({ x });
    // x·Wᵀ with Wᵀ = [[1,0,1],[0,1,1]]: [2,4,6] and [6,8,14]; alpha halves them; Reshape flattens.
    assert.deepEqual(y.dims, [6]);
    assert.deepEqual([...(y.data as Float32Array)], [1, 2, 3, 3, 4, 7]);
    assert.deepEqual([...(xt.data as Float32Array)], [2, 6, 4, 8]);
  } finally {
    await session.release();
  }
});

test('onnxruntime reads a uint8 input and a Cast to float, as the exported feature graphs take raw pixels', async () => {
  const bytes = encodeOnnxModel(
    model({
      nodes: [
        {
          opType: 'Cast',
          name: 'cast',
          inputs: ['p'],
          outputs: ['f'],
          attributes: [{ name: 'to', kind: 'int', value: OnnxDataType.float }],
        },
      ],
      inputs: [{ name: 'p', elemType: OnnxDataType.uint8, shape: [3] }],
      outputs: [{ name: 'f', elemType: OnnxDataType.float, shape: [3] }],
    }),
  );
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const { f } = await session.run({ p: new ort.Tensor('uint8', new Uint8Array([0, 128, 255]), [3]) });
    assert.deepEqual([...(f.data as Float32Array)], [0, 128, 255]);
  } finally {
    await session.release();
  }
});
