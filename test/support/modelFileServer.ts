// Test support: a real HTTP server on 127.0.0.1 that serves model folders as if they were hosted,
// with the faults a real network produces, and a loader that reads a model folder into tfjs.

import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as path from 'node:path';
import type * as tfType from '@tensorflow/tfjs';

/** How the server misbehaves for one file. */
export type Fault =
  | { kind: 'status'; status: number }
  /** Announces the full Content-Length, sends half, then destroys the socket. */
  | { kind: 'truncate' }
  /** Serves the file with one byte changed. */
  | { kind: 'corrupt' }
  /** Sends headers and a first part, then never another byte. */
  | { kind: 'stall' }
  /** Sends the file in small pieces with a pause between them. */
  | { kind: 'slow'; chunkBytes: number; delayMs: number };

export interface ModelFileServer {
  /** URL of `<name>/<file>` on the server. */
  url(name: string, file?: string): string;
  /** Paths requested so far, in order. */
  requests: string[];
  setFault(name: string, file: string, fault: Fault | undefined): void;
  close(): Promise<void>;
}

/** Serves each folder in `folders` at `/<name>/…` on a random port of 127.0.0.1. */
export async function startModelFileServer(folders: Record<string, string>): Promise<ModelFileServer> {
  const faults = new Map<string, Fault>();
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err) => {
      res.destroy(err as Error);
    });
  });
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(urlPath);
    const [, name, ...rest] = urlPath.split('/');
    const file = rest.join('/');
    const root = folders[name];
    const full = root ? path.resolve(root, file) : '';
    if (!root || !full.startsWith(path.resolve(root) + path.sep)) {
      res.writeHead(404).end('not found');
      return;
    }
    const fault = faults.get(`${name}/${file}`);
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'text/plain' }).end(`status ${fault.status}`);
      return;
    }
    let data: Buffer;
    try {
      data = await fsp.readFile(full);
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    const type = file.endsWith('.json') ? 'application/json' : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': data.byteLength });
    switch (fault?.kind) {
      case 'truncate':
        res.write(data.subarray(0, Math.floor(data.byteLength / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      case 'corrupt': {
        const copy = Buffer.from(data);
        copy[Math.floor(copy.byteLength / 2)] ^= 0xff;
        res.end(copy);
        return;
      }
      case 'stall':
        res.write(data.subarray(0, Math.min(65536, Math.floor(data.byteLength / 3))));
        return;
      case 'slow':
        for (let i = 0; i < data.byteLength && !res.destroyed; i += fault.chunkBytes) {
          res.write(data.subarray(i, i + fault.chunkBytes));
          await new Promise((r) => setTimeout(r, fault.delayMs));
        }
        res.end();
        return;
      default:
        res.end(data);
    }
  }
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name, file = 'model.json') => `http://127.0.0.1:${port}/${name}/${file}`,
    requests,
    setFault(name, file, fault) {
      if (fault) faults.set(`${name}/${file}`, fault);
      else faults.delete(`${name}/${file}`);
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Loads a folder holding model.json + weight files with tfjs, reading the files itself. */
export async function loadLayersModelFromFolder(tf: typeof tfType, dir: string): Promise<tfType.LayersModel> {
  const modelJson = JSON.parse(await fsp.readFile(path.join(dir, 'model.json'), 'utf8')) as tfType.io.ModelJSON;
  const weightSpecs = modelJson.weightsManifest.flatMap((g) => g.weights);
  const buffers = await Promise.all(modelJson.weightsManifest.flatMap((g) => g.paths).map((p) => fsp.readFile(path.join(dir, p))));
  const joined = Buffer.concat(buffers);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData }));
}

/** Saves a LayersModel as model.json + weights.bin in `dir` (what `tf.io.withSaveHandler` gives a file writer). */
export async function saveLayersModelToFolder(tf: typeof tfType, model: tfType.LayersModel, dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData;
      const bytes =
        weightData === undefined
          ? new Uint8Array(0)
          : new Uint8Array(Array.isArray(weightData) ? tf.io.concatenateArrayBuffers(weightData) : weightData);
      await fsp.writeFile(path.join(dir, 'weights.bin'), bytes);
      const modelJson = {
        format: 'layers-model',
        generatedBy: 'image-trainer test',
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      await fsp.writeFile(path.join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}
