/**
 * Parquet files through hyparquet-writer (write) and hyparquet (read). This file only maps our
 * column descriptions onto the libraries' schema elements: scalar columns, and lists of scalars in
 * the standard three-level LIST layout (`<name>.list.element`) that pyarrow writes and reads.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parquetMetadata, parquetReadObjects, parquetSchema, type SchemaElement } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { makeDirectory } from '../sim/files.ts';

/** Physical column types used here (parquet primitive types; STRING is UTF-8 BYTE_ARRAY). */
export type ParquetScalar = 'INT64' | 'INT32' | 'FLOAT' | 'DOUBLE' | 'BOOLEAN' | 'STRING';

/** One column: a scalar per row, or (when `list`) an array of scalars per row. */
export interface ParquetColumn {
  name: string;
  type: ParquetScalar;
  list?: boolean;
  data: unknown[];
}

function leaf(name: string, type: ParquetScalar): SchemaElement {
  return type === 'STRING'
    ? { name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }
    : { name, type, repetition_type: 'OPTIONAL' };
}

/** The schema elements for `columns` (root first), as hyparquet-writer takes them. */
export function schemaFor(columns: ParquetColumn[]): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }];
  for (const c of columns) {
    if (c.list) {
      schema.push(
        { name: c.name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        leaf('element', c.type),
      );
    } else schema.push(leaf(c.name, c.type));
  }
  return schema;
}

/**
 * Write `columns` to `file` atomically (temp file + rename). `kvMetadata` goes into the file's
 * key-value metadata (e.g. the `pandas` entry that tells pandas which column is the index).
 */
export function writeParquetFile(file: string, columns: ParquetColumn[], kvMetadata: Record<string, string> = {}): void {
  const rows = columns[0]?.data.length ?? 0;
  for (const c of columns) {
    if (c.data.length !== rows) throw new RangeError(`parquet column '${c.name}' has ${c.data.length} rows, column '${columns[0].name}' has ${rows}`);
  }
  const buf = parquetWriteBuffer({
    columnData: columns.map((c) => ({ name: c.name, data: c.data as never })),
    schema: schemaFor(columns),
    kvMetadata: Object.entries(kvMetadata).map(([key, value]) => ({ key, value })),
    createdBy: 'evovla (hyparquet-writer)',
  });
  makeDirectory(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, new Uint8Array(buf));
  fs.renameSync(tmp, file);
}

/** A column's type as read back: its primitive type, converted type and whether it is a list. */
export interface ParquetColumnType {
  name: string;
  type: string;
  convertedType?: string;
  list: boolean;
}

/** Rows and column types of a parquet file. */
export interface ParquetTable {
  rows: Record<string, unknown>[];
  columns: ParquetColumnType[];
  kvMetadata: Record<string, string>;
}

/** Read a whole parquet file (rows as objects; INT64 values come back as bigint). */
export async function readParquetFile(file: string): Promise<ParquetTable> {
  const bytes = fs.readFileSync(file);
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const metadata = parquetMetadata(buf);
  const tree = parquetSchema(metadata);
  const columns: ParquetColumnType[] = tree.children.map((child) => {
    const isList = child.element.converted_type === 'LIST' || child.element.logical_type?.type === 'LIST';
    let el = child;
    while (el.children.length) el = el.children[0];
    return { name: child.element.name, type: String(el.element.type), convertedType: el.element.converted_type, list: isList };
  });
  const rows = (await parquetReadObjects({ file: buf, metadata })) as Record<string, unknown>[];
  const kvMetadata: Record<string, string> = {};
  for (const kv of metadata.key_value_metadata ?? []) kvMetadata[kv.key] = kv.value ?? '';
  return { rows, columns, kvMetadata };
}
