/** Errors of the exporters, printed to the user as one line (the CLI turns them into usage errors). */

/** Thrown for episodes or outputs an exporter cannot write; names the file and the field. */
export class ExportError extends Error {
  override name = 'ExportError';
}
