/**
 * Reads what the deploy loop needs from an .onnx file without a runtime: graph inputs and outputs
 * (name, element type, shape) and ModelProto.metadata_props. A minimal protobuf walk over the
 * fields named below (onnx.proto3); everything else, weights included, is skipped by length.
 */

/** A graph input or output. Dims are numbers, symbolic names, or null when unknown. */
export interface OnnxValueInfo {
  name: string;
  /** TensorProto.DataType code (1 = float32, 7 = int64, ...). */
  elemType: number;
  shape: Array<number | string | null>;
}

export interface OnnxModelInfo {
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  metadata: Record<string, string>;
}

/** Human names of the element types a policy may use. */
export const ELEM_TYPE_NAMES: Record<number, string> = { 1: 'float32', 2: 'uint8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64' };

class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly end = buf.length,
  ) {}
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
      if (shift > 70n) throw new Error('varint too long');
    }
  }
  /** Calls `fn(field, wireType, sub)` for each field; `sub` reads a length-delimited body. */
  fields(fn: (field: number, sub: Reader | null, value: bigint | null) => void): void {
    while (this.pos < this.end) {
      const key = Number(this.varint());
      const field = key >>> 3;
      const wire = key & 7;
      if (wire === 0) fn(field, null, this.varint());
      else if (wire === 2) {
        const len = Number(this.varint());
        const start = this.pos;
        if (start + len > this.end) throw new Error(`field ${field} runs past the end of its message`);
        this.pos += len;
        fn(field, new Reader(this.buf.subarray(start, start + len)), null);
      } else if (wire === 1) this.pos += 8;
      else if (wire === 5) this.pos += 4;
      else throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
  string(): string {
    return new TextDecoder().decode(this.buf.subarray(this.pos, this.end));
  }
}

function valueInfo(r: Reader): OnnxValueInfo {
  const info: OnnxValueInfo = { name: '', elemType: 0, shape: [] };
  r.fields((f, sub) => {
    if (f === 1 && sub) info.name = sub.string();
    else if (f === 2 && sub) {
      // TypeProto.tensor_type (1): elem_type (1), shape (2) -> dim (1): dim_value (1) | dim_param (2)
      sub.fields((tf, tensor) => {
        if (tf !== 1 || !tensor) return;
        tensor.fields((ff, shape, v) => {
          if (ff === 1 && v !== null) info.elemType = Number(v);
          else if (ff === 2 && shape) {
            shape.fields((df, dim) => {
              if (df !== 1 || !dim) return;
              let d: number | string | null = null;
              dim.fields((kf, s, v2) => {
                if (kf === 1 && v2 !== null) d = Number(v2);
                else if (kf === 2 && s) d = s.string();
              });
              info.shape.push(d);
            });
          }
        });
      });
    }
  });
  return info;
}

/** Parse the inputs, outputs and metadata of an ONNX model. Throws naming the problem. */
export function readOnnxInfo(bytes: Uint8Array): OnnxModelInfo {
  const out: OnnxModelInfo = { inputs: [], outputs: [], metadata: {} };
  try {
    new Reader(bytes).fields((f, sub) => {
      if (!sub) return;
      if (f === 7) {
        // GraphProto: input (11), output (12)
        sub.fields((gf, v) => {
          if (gf === 11 && v) out.inputs.push(valueInfo(v));
          else if (gf === 12 && v) out.outputs.push(valueInfo(v));
        });
      } else if (f === 14) {
        let key = '';
        let value = '';
        sub.fields((kf, s) => {
          if (kf === 1 && s) key = s.string();
          else if (kf === 2 && s) value = s.string();
        });
        out.metadata[key] = value;
      }
    });
  } catch (err) {
    throw new Error(`not a readable ONNX model: ${(err as Error).message}`);
  }
  if (!out.inputs.length || !out.outputs.length) throw new Error('not an ONNX model (no graph inputs or outputs found)');
  return out;
}
