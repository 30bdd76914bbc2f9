/** Why code does not compile: a message at a 1-based line and column (null when the tool gives none). */
export interface Diagnostic {
  line: number | null;
  column: number | null;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return d.line === null ? d.message : `line ${d.line}, column ${d.column ?? 1}: ${d.message}`;
}

/** The code does not parse, transpile or type-check (verdict `compile_error`), never an attack. */
export class CompileError extends Error {
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n') || 'the code does not compile');
    this.name = 'CompileError';
    this.diagnostics = diagnostics;
  }
}
