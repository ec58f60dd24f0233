/**
 * The graph builder that nn/ traces models into. A `Graph` records ONNX nodes over symbolic
 * `Tensor`s whose shapes are tracked statically (a dimension is a size or a symbol such as "B"), so
 * autodiff can decide which axes were broadcast without running anything. The same graph exports as a
 * self-contained inference model (parameters as initializers) or as a training model (parameters as
 * inputs); see `toModel`.
 */
import { DataType, encodeModel, type AttributeValue, type DataTypeCode, type NodeSpec, type TensorProtoSpec, type ValueInfoSpec } from './proto.ts';

/** One dimension: a fixed size or a symbolic name resolved at run time (e.g. the batch "B"). */
export type Dim = number | string;
/** A static shape, outermost first. */
export type Shape = readonly Dim[];
/** Element types nn/ graphs carry. Float tensors use the graph's `floatType`. */
export type DType = 'float32' | 'float64' | 'int64' | 'bool';

const DTYPE_CODE: Record<DType, DataTypeCode> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  int64: DataType.INT64,
  bool: DataType.BOOL,
};

/** The ONNX element-type code of a dtype. */
export function dtypeCode(dtype: DType): DataTypeCode {
  return DTYPE_CODE[dtype];
}

/** Formats a shape for error messages, e.g. `[B,64,128]`. */
export function shapeString(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

/** A symbolic value in a `Graph`. Created by ops; never constructed directly by users. */
export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly shape: Shape,
    readonly dtype: DType,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}${shapeString(this.shape)}:${this.dtype}`;
  }
}

/** A recorded operation. `inputs` may contain null for omitted optional inputs. */
export interface Node {
  readonly op: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, AttributeValue>>;
}

/** A trainable (or frozen) parameter: a named float tensor with its current value. */
export interface Parameter {
  readonly name: string;
  readonly shape: readonly number[];
  /** Current value, row-major. Owned by the ParamSet / Trainer that holds it. */
  data: Float32Array;
  /** Whether AdamW's decoupled weight decay applies (false for biases and norm gains). */
  readonly decay: boolean;
  /** Frozen parameters are graph constants for the optimizer: they get no gradient. */
  readonly trainable: boolean;
}

interface ConstantEntry {
  tensor: Tensor;
  data: Float32Array | Float64Array | BigInt64Array | Uint8Array;
}

/** Options of a new graph. */
export interface GraphOptions {
  /** Element type of every float tensor: float32 for training and inference, float64 for gradient checks. */
  floatType?: 'float32' | 'float64';
  name?: string;
  /**
   * Whether the graph is a training step (dropout active). Inference exports and rollout runners
   * trace with false (the default); training graphs with true.
   */
  training?: boolean;
}

/** How `toModel` exposes parameters. */
export type ParamMode = 'initializer' | 'input';

/** Export options. */
export interface ExportOptions {
  /** Parameters as embedded initializers (inference artefact) or as graph inputs (training step). */
  params: ParamMode;
  /** Named outputs; defaults to everything registered with `graph.output`. */
  outputs?: readonly string[];
  opset?: number;
  metadata?: Readonly<Record<string, string>>;
}

/** ONNX opset nn/ emits. 17 has LayerNormalization; ReduceSum takes axes as an input there. */
export const OPSET = 17;

export class Graph {
  readonly floatType: 'float32' | 'float64';
  readonly name: string;
  /** Training-mode graph (dropout active); see `GraphOptions.training`. */
  readonly training: boolean;
  readonly nodes: Node[] = [];
  private readonly inputList: Tensor[] = [];
  private readonly outputMap = new Map<string, Tensor>();
  private readonly paramMap = new Map<string, { tensor: Tensor; param: Parameter }>();
  private readonly constants = new Map<string, ConstantEntry>();
  private readonly constantByName = new Map<string, ConstantEntry>();
  private readonly names = new Set<string>();
  private readonly shapeOf = new Map<Tensor, Tensor>();
  /** Nodes autodiff treats as constants (see `stopGradient` in ops.ts). */
  readonly stopGradientNodes = new Set<Node>();
  /**
   * Composite functions with a hand-written gradient (e.g. GELU): output tensor -> its inputs and a
   * rule giving their gradients. Autodiff uses the rule at the output's producer and so skips the
   * composite's internal nodes, whose naive gradients would cost more element-wise passes.
   */
  readonly customGradients = new Map<Tensor, { inputs: readonly Tensor[]; vjp: (dy: Tensor) => (Tensor | null)[] }>();
  /** Which node produced each tensor (graph inputs, params and constants have none). */
  readonly producer = new Map<Tensor, Node>();
  private counter = 0;

  constructor(options: GraphOptions = {}) {
    this.floatType = options.floatType ?? 'float32';
    this.name = options.name ?? 'evovla';
    this.training = options.training ?? false;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: the name "${name}" is already used`);
    this.names.add(name);
    return name;
  }

  /** A fresh internal tensor name with a readable hint. */
  fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  /** Declares a graph input. Float inputs take the graph's float type unless `dtype` says otherwise. */
  input(name: string, shape: Shape, dtype?: DType): Tensor {
    const t = new Tensor(this, this.claim(name), shape, dtype ?? this.floatType);
    this.inputList.push(t);
    return t;
  }

  /** The graph tensor of a parameter (one per parameter, however often it is used). */
  param(p: Parameter): Tensor {
    const existing = this.paramMap.get(p.name);
    if (existing) {
      if (existing.param !== p) throw new Error(`graph ${this.name}: two different parameters are named "${p.name}"`);
      return existing.tensor;
    }
    const t = new Tensor(this, this.claim(p.name), p.shape, this.floatType);
    this.paramMap.set(p.name, { tensor: t, param: p });
    return t;
  }

  /** Parameters used by this graph, in first-use order. */
  get params(): Parameter[] {
    return [...this.paramMap.values()].map((e) => e.param);
  }

  /** The tensor of a used parameter, by name. */
  paramTensor(name: string): Tensor {
    const e = this.paramMap.get(name);
    if (!e) throw new Error(`graph ${this.name}: no parameter named "${name}" is used`);
    return e.tensor;
  }

  get inputs(): readonly Tensor[] {
    return this.inputList;
  }

  /** A float constant, of the graph's float type unless `dtype` says otherwise (deduplicated by value). */
  constant(values: number | readonly number[], shape?: readonly number[], dtype: 'float32' | 'float64' = this.floatType): Tensor {
    const arr = typeof values === 'number' ? [values] : values;
    const dims = shape ?? (typeof values === 'number' ? [] : [arr.length]);
    const data = dtype === 'float64' ? Float64Array.from(arr) : Float32Array.from(arr);
    return this.constantTensor(data, dims, dtype, 'c');
  }

  /** An int64 constant (shapes, axes, indices). */
  constInt64(values: readonly number[], shape?: readonly number[]): Tensor {
    return this.constantTensor(BigInt64Array.from(values.map((v) => BigInt(v))), shape ?? [values.length], 'int64', 'i');
  }

  /** The values of an int64 constant, or undefined when `t` is not one. */
  int64Values(t: Tensor): number[] | undefined {
    const e = this.constantByName.get(t.name);
    if (!e || e.tensor !== t || !(e.data instanceof BigInt64Array)) return undefined;
    return Array.from(e.data, (v) => Number(v));
  }

  /** A float constant from raw data of any size (e.g. a mask), deduplicated only when small. */
  constantData(data: Float32Array | Float64Array, shape: readonly number[]): Tensor {
    const converted = this.floatType === 'float64' ? Float64Array.from(data) : Float32Array.from(data);
    return this.constantTensor(converted, shape, this.floatType, 'k');
  }

  private constantTensor(data: ConstantEntry['data'], shape: readonly number[], dtype: DType, hint: string): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new Error(`constant: ${data.length} values do not fill shape ${shapeString(shape)}`);
    const key = data.length <= 64 ? `${dtype}|${shape.join(',')}|${Array.from(data as ArrayLike<number | bigint>).join(',')}` : null;
    if (key !== null) {
      const hit = this.constants.get(key);
      if (hit) return hit.tensor;
    }
    const t = new Tensor(this, this.claim(this.fresh(hint)), shape, dtype);
    const entry = { tensor: t, data };
    if (key !== null) this.constants.set(key, entry);
    this.constantByName.set(t.name, entry);
    return t;
  }

  /** The runtime shape of `t` as an int64 tensor (one Shape node per tensor). */
  shape(t: Tensor): Tensor {
    const cached = this.shapeOf.get(t);
    if (cached) return cached;
    if (t.shape.every((d) => typeof d === 'number')) {
      const c = this.constInt64(t.shape as number[]);
      this.shapeOf.set(t, c);
      return c;
    }
    const [s] = this.addNode('Shape', [t], {}, [{ shape: [t.rank], dtype: 'int64' }]);
    this.shapeOf.set(t, s);
    return s;
  }

  /** Records a node and returns its output tensors. Ops call this after inferring output shapes. */
  addNode(
    op: string,
    inputs: readonly (Tensor | null)[],
    attrs: Readonly<Record<string, AttributeValue>>,
    outputs: readonly { shape: Shape; dtype: DType; name?: string }[],
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new Error(`${op}: input ${t.name} belongs to another graph`);
    }
    const outs = outputs.map((o) => new Tensor(this, this.claim(o.name ?? this.fresh(op.toLowerCase())), o.shape, o.dtype));
    const node: Node = { op, inputs, outputs: outs, attrs };
    this.nodes.push(node);
    for (const o of outs) this.producer.set(o, node);
    return outs;
  }

  /** Registers a named graph output (the name is the ONNX output name). */
  output(name: string, t: Tensor): void {
    if (this.outputMap.has(name)) throw new Error(`graph ${this.name}: output "${name}" is already defined`);
    this.outputMap.set(name, t);
  }

  get outputs(): ReadonlyMap<string, Tensor> {
    return this.outputMap;
  }

  /**
   * Builds the ONNX model. Nodes that no requested output needs are dropped; outputs whose tensor
   * is a graph input or another output are routed through Identity, since ONNX names must be unique.
   */
  toModel(options: ExportOptions): Uint8Array {
    const outputNames = options.outputs ?? [...this.outputMap.keys()];
    const wanted = outputNames.map((n) => {
      const t = this.outputMap.get(n);
      if (!t) throw new Error(`graph ${this.name}: no output named "${n}" (have ${[...this.outputMap.keys()].join(', ')})`);
      return [n, t] as const;
    });
    const extra: NodeSpec[] = [];
    const outputInfos: ValueInfoSpec[] = [];
    const live = new Set<Tensor>();
    // A node output exported once is renamed to its output name (no copy); a tensor exported twice,
    // or a graph input / parameter / constant exported as an output, goes through an Identity.
    const rename = new Map<Tensor, string>();
    // Tensors also exported under their own name keep it; the other exports of them are copies.
    const keepsOwnName = new Set(wanted.filter(([n, t]) => n === t.name).map(([, t]) => t));
    for (const [n, t] of wanted) {
      live.add(t);
      if (n === t.name) {
        // exported under its own name
      } else if (this.producer.has(t) && !rename.has(t) && !keepsOwnName.has(t) && !this.names.has(n)) {
        rename.set(t, n);
      } else {
        extra.push({ opType: 'Identity', inputs: [rename.get(t) ?? t.name], outputs: [n] });
      }
      outputInfos.push({ name: n, elemType: dtypeCode(t.dtype), shape: t.shape });
    }
    const nameOf = (t: Tensor): string => rename.get(t) ?? t.name;
    const kept: Node[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      if (!node.outputs.some((o) => live.has(o))) continue;
      kept.push(node);
      for (const t of node.inputs) if (t) live.add(t);
    }
    kept.reverse();
    const nodes: NodeSpec[] = kept.flatMap((n): NodeSpec[] => {
      const inputs = n.inputs.map((t) => (t ? nameOf(t) : ''));
      const outputs = n.outputs.map((t) => (live.has(t) || n.outputs.length === 1 ? nameOf(t) : ''));
      // ONNX Runtime's CPU Sum is a pass per input pair only up to 3 inputs: with 4 inputs it took
      // 2.2 ms where 3 Adds took 1.8, with 5 inputs 4.4 ms against 2.4 ([64, 80, 128] float32).
      // Traced gradients keep one Sum per accumulated tensor (autodiff flattens nested ones); the
      // file gets a chain of Adds, in the same order (the same float rounding as the Sum kernel's).
      if (n.op === 'Sum' && inputs.length >= 4) return addChain(inputs, outputs[0]);
      return [{ opType: n.op, inputs, outputs, attributes: n.attrs }];
    });
    const inputs: ValueInfoSpec[] = [];
    for (const t of this.inputList) {
      if (live.has(t)) inputs.push({ name: t.name, elemType: dtypeCode(t.dtype), shape: t.shape });
    }
    const initializers: TensorProtoSpec[] = [];
    for (const { tensor, param } of this.paramMap.values()) {
      if (!live.has(tensor)) continue;
      if (options.params === 'input') {
        inputs.push({ name: tensor.name, elemType: dtypeCode(tensor.dtype), shape: tensor.shape });
      } else {
        const data = this.floatType === 'float64' ? Float64Array.from(param.data) : param.data;
        initializers.push({ name: tensor.name, dims: param.shape, dataType: dtypeCode(this.floatType), raw: bytesOf(data) });
      }
    }
    for (const { tensor, data } of this.constantByName.values()) {
      if (!live.has(tensor)) continue;
      initializers.push({ name: tensor.name, dims: tensor.shape as number[], dataType: dtypeCode(tensor.dtype), raw: bytesOf(data) });
    }
    return encodeModel({
      opset: options.opset ?? OPSET,
      graph: { name: this.name, nodes: [...nodes, ...extra], inputs, outputs: outputInfos, initializers },
      metadata: options.metadata,
    });
  }
}

/** x0 + x1 + ... as a chain of binary Adds ending in `output` (intermediates named after it). */
function addChain(inputs: readonly string[], output: string): NodeSpec[] {
  const nodes: NodeSpec[] = [];
  let acc = inputs[0];
  for (let i = 1; i < inputs.length; i++) {
    const out = i === inputs.length - 1 ? output : `${output}/sum${i}`;
    nodes.push({ opType: 'Add', inputs: [acc, inputs[i]], outputs: [out] });
    acc = out;
  }
  return nodes;
}

/** Little-endian bytes of a typed array (all supported hosts are little-endian). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
