/**
 * The onnxruntime-node boundary: session creation with an explicit execution provider, named host
 * tensors in and out, batch padding. The only module in the project that imports onnxruntime-node.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

/** Where a model runs. `cuda` needs onnxruntime-node's CUDA provider library to be installed. */
export type ExecutionProvider = 'cpu' | 'cuda';

/** Typed-array payloads the runtime passes (bool tensors travel as Uint8Array). */
export type HostData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** A tensor on the host: row-major data and its shape. */
export interface HostTensor {
  data: HostData;
  shape: readonly number[];
}

/** Session options. */
export interface SessionOptions {
  /** Default 'cpu'. 'cuda' where its provider is absent is an error, never a silent CPU fallback. */
  executionProvider?: ExecutionProvider;
  /** Intra-op threads (default: ONNX Runtime's choice, all cores). */
  threads?: number;
  /** Graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** CUDA device index (default 0). */
  deviceId?: number;
  /**
   * Let idle intra-op threads spin-wait (ONNX Runtime's own default). Default false here: spinning
   * burns cores that simulation workers and other processes need, and on a shared 2-core host it
   * made 2-thread training 2-2.5x slower (MLP 25k vs 68k samples/s, transformer 69 vs 125).
   */
  spinning?: boolean;
}

/** Why `cuda` can or cannot be used here. */
export interface ProviderStatus {
  available: boolean;
  /** The library looked for. */
  library: string;
  reason?: string;
}

function ortBinFolder(): string {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('onnxruntime-node');
  // entry: <pkg>/dist/index.js; native binaries: <pkg>/bin/napi-v6/<platform>/<arch>/
  return join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/**
 * Whether onnxruntime-node can load its CUDA execution provider. `listSupportedBackends()` names
 * cuda even when its provider library was never installed (it reports `bundled: false`), so the
 * library file is what decides.
 */
export function cudaStatus(): ProviderStatus {
  const file = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  const library = join(ortBinFolder(), file);
  const listed = ort.listSupportedBackends().some((b) => b.name === 'cuda');
  if (!listed) return { available: false, library, reason: `this onnxruntime-node build (${process.platform}/${process.arch}) has no CUDA backend` };
  if (!existsSync(library)) {
    return {
      available: false,
      library,
      reason:
        `the CUDA provider library ${library} is not installed; reinstall onnxruntime-node with its CUDA ` +
        `binaries (npm install onnxruntime-node --onnxruntime-node-install=cuda12) on a machine with CUDA and cuDNN`,
    };
  }
  return { available: true, library };
}

const TYPE_NAMES: Record<string, ort.Tensor.Type> = {
  Float32Array: 'float32',
  Float64Array: 'float64',
  BigInt64Array: 'int64',
  Int32Array: 'int32',
  Uint8Array: 'bool',
};

function toOrt(name: string, t: HostTensor): ort.Tensor {
  const type = TYPE_NAMES[t.data.constructor.name];
  if (!type) throw new Error(`input "${name}": unsupported array type ${t.data.constructor.name}`);
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (size !== t.data.length) {
    throw new Error(`input "${name}": ${t.data.length} values do not fill shape [${t.shape.join(',')}] (${size} expected)`);
  }
  return new ort.Tensor(type, t.data as never, t.shape as number[]);
}

function fromOrt(t: ort.Tensor): HostTensor {
  return { data: t.data as HostData, shape: t.dims };
}

/** An ONNX Runtime session with named host-tensor inputs and outputs. */
export class Session {
  private constructor(
    private readonly inner: ort.InferenceSession,
    /** The provider the session was created with. */
    readonly executionProvider: ExecutionProvider,
  ) {}

  /** @internal use `createSession`. */
  static wrap(inner: ort.InferenceSession, ep: ExecutionProvider): Session {
    return new Session(inner, ep);
  }

  get inputNames(): readonly string[] {
    return this.inner.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.inner.outputNames;
  }

  /**
   * Runs the model. Every graph input must be fed; `outputs` restricts what is computed (default:
   * all outputs). Returned arrays are fresh copies owned by the caller.
   */
  async run(feeds: Readonly<Record<string, HostTensor>>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    const missing = this.inner.inputNames.filter((n) => !(n in feeds));
    if (missing.length > 0) throw new Error(`run: missing inputs ${missing.join(', ')} (the model takes ${this.inner.inputNames.join(', ')})`);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.inner.inputNames) ortFeeds[name] = toOrt(name, feeds[name]);
    if (outputs) {
      const unknown = outputs.filter((o) => !this.inner.outputNames.includes(o));
      if (unknown.length > 0) throw new Error(`run: unknown outputs ${unknown.join(', ')} (the model gives ${this.inner.outputNames.join(', ')})`);
    }
    let result: ort.InferenceSession.ReturnType;
    try {
      result = outputs ? await this.inner.run(ortFeeds, outputs as string[]) : await this.inner.run(ortFeeds);
    } catch (e) {
      const fed = Object.entries(feeds)
        .map(([n, t]) => `${n}[${t.shape.join(',')}]`)
        .join(', ');
      throw new Error(`ONNX Runtime run failed (${this.executionProvider}) with inputs ${fed}: ${(e as Error).message}`, { cause: e });
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(result)) out[name] = fromOrt(t);
    return out;
  }

  /**
   * Runs with the leading (batch) axis of every input padded with zeros up to `batch`, then cuts
   * outputs back to the real batch. Lets a caller keep a few fixed batch sizes (steady kernels and
   * memory) whatever the number of environments that are live.
   */
  async runPadded(feeds: Readonly<Record<string, HostTensor>>, batch: number, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    let real = -1;
    const padded: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      const b = t.shape[0];
      if (real === -1) real = b;
      else if (b !== real) throw new Error(`runPadded: input "${name}" has batch ${b}, others have ${real}`);
      padded[name] = padBatch(t, batch, name);
    }
    const result = await this.run(padded, outputs);
    for (const [name, t] of Object.entries(result)) result[name] = sliceBatch(t, real);
    return result;
  }

  async dispose(): Promise<void> {
    await this.inner.release();
  }
}

/** Pads axis 0 with zeros up to `batch` (a copy; returns `t` itself when already that size). */
export function padBatch(t: HostTensor, batch: number, name = 'tensor'): HostTensor {
  const b = t.shape[0];
  if (b === batch) return t;
  if (b > batch) throw new Error(`padBatch: ${name} has batch ${b}, more than the padded size ${batch}`);
  const row = t.data.length / b;
  const Ctor = t.data.constructor as new (n: number) => HostData;
  const data = new Ctor(batch * row);
  (data as Float32Array).set(t.data as Float32Array);
  return { data, shape: [batch, ...t.shape.slice(1)] };
}

/** The first `batch` rows of `t` along axis 0 (a view when possible). */
export function sliceBatch(t: HostTensor, batch: number): HostTensor {
  if (t.shape.length === 0 || t.shape[0] === batch) return t;
  const row = t.data.length / t.shape[0];
  return { data: t.data.subarray(0, batch * row) as HostData, shape: [batch, ...t.shape.slice(1)] };
}

/**
 * Creates a session from model bytes or a file path. Asking for `cuda` where its provider library is
 * absent throws, naming the missing library, instead of quietly running on the CPU.
 */
export async function createSession(model: Uint8Array | string, options: SessionOptions = {}): Promise<Session> {
  const ep = options.executionProvider ?? 'cpu';
  if (ep !== 'cpu' && ep !== 'cuda') throw new Error(`executionProvider must be 'cpu' or 'cuda', got ${JSON.stringify(ep)}`);
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new Error(`threads must be a positive integer, got ${options.threads}`);
  }
  if (ep === 'cuda') {
    const status = cudaStatus();
    if (!status.available) throw new Error(`executionProvider 'cuda' is not available: ${status.reason}`);
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ep === 'cuda' ? [{ name: 'cuda', deviceId: options.deviceId ?? 0 }] : ['cpu'],
    graphOptimizationLevel: options.optimization ?? 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(options.threads !== undefined ? { intraOpNumThreads: options.threads } : {}),
    extra: { session: { intra_op: { allow_spinning: options.spinning === true ? '1' : '0' } } },
  };
  const bytes = typeof model === 'string' ? readFileSync(model) : model;
  try {
    const inner = await ort.InferenceSession.create(bytes, sessionOptions);
    return Session.wrap(inner, ep);
  } catch (e) {
    const where = typeof model === 'string' ? model : `${bytes.length}-byte model`;
    throw new Error(`could not create an ONNX Runtime session (${ep}) for ${where}: ${(e as Error).message}`, { cause: e });
  }
}
