import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import type { Diagnostic } from './diagnostics.js';

/**
 * The type-check stage of TypeScript (`languages.typescript.typecheck`): the one submitted file,
 * checked in memory against ES2022 and a small declaration of what the sandbox's Node gives a
 * program. Nothing is read from the user's side and nothing is emitted; esbuild still transpiles.
 *
 * Not strict: the everyday script (`function f(x) {…}`) must keep running; what is caught is code
 * the checker can prove wrong (`const n: number = "a"`, a call with the wrong arguments).
 */

const FILE = '/main.ts';
const AMBIENT = '/warden-node.d.ts';

/**
 * What Node adds to ES2022, loosely typed: enough that ordinary programs check, without the ~2 MB
 * of @types/node that would double the first check. Any module imports as `any`.
 */
const AMBIENT_SOURCE = `
declare module '*';
interface WardenStream { write(chunk: string | Uint8Array, ...rest: any[]): boolean; [key: string]: any }
declare var console: { [method: string]: (...args: any[]) => void };
declare var process: {
  argv: string[]; env: Record<string, string | undefined>; exitCode: number | undefined;
  stdout: WardenStream; stderr: WardenStream; stdin: any;
  exit(code?: number): never; [key: string]: any;
};
declare function require(id: string): any;
declare var module: any;
declare var exports: any;
declare var __dirname: string;
declare var __filename: string;
declare var Buffer: any;
declare function setTimeout(fn: (...args: any[]) => void, ms?: number, ...args: any[]): any;
declare function setInterval(fn: (...args: any[]) => void, ms?: number, ...args: any[]): any;
declare function setImmediate(fn: (...args: any[]) => void, ...args: any[]): any;
declare function clearTimeout(handle: any): void;
declare function clearInterval(handle: any): void;
declare function clearImmediate(handle: any): void;
declare function queueMicrotask(fn: () => void): void;
declare function structuredClone<T>(value: T): T;
declare function fetch(input: any, init?: any): Promise<any>;
declare var TextEncoder: any;
declare var TextDecoder: any;
declare var URL: any;
declare var URLSearchParams: any;
declare var AbortController: any;
declare var performance: { now(): number; [key: string]: any };
`;

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2022.d.ts'],
  types: [],
  noEmit: true,
  noResolve: true,
  skipLibCheck: true,
  allowJs: false,
  esModuleInterop: true,
  allowImportingTsExtensions: true,
};

const libDir = dirname(createRequire(import.meta.url).resolve('typescript/lib/lib.es2022.d.ts'));

/** Lib files parsed once per process: they never change, and parsing them is most of a cold check. */
const libFiles = new Map<string, ts.SourceFile | undefined>();

function libFile(fileName: string): ts.SourceFile | undefined {
  if (libFiles.has(fileName)) return libFiles.get(fileName);
  let file: ts.SourceFile | undefined;
  if (fileName === AMBIENT) {
    file = ts.createSourceFile(AMBIENT, AMBIENT_SOURCE, ts.ScriptTarget.ES2022, true);
  } else {
    try {
      const text = readFileSync(join(libDir, fileName.replace(/^\/lib\//, '')), 'utf8');
      file = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
    } catch {
      file = undefined;
    }
  }
  libFiles.set(fileName, file);
  return file;
}

function host(code: string): ts.CompilerHost {
  return {
    // Appended, so positions stay the user's: every submission is a module (Node detects one when it
    // sees top-level await), and the public API has no other way to force that on a lone file.
    getSourceFile: (fileName) =>
      fileName === FILE
        ? ts.createSourceFile(FILE, `${code}\nexport {};\n`, ts.ScriptTarget.ES2022, true)
        : libFile(fileName),
    getDefaultLibFileName: () => '/lib/lib.es2022.d.ts',
    getDefaultLibLocation: () => '/lib',
    writeFile: () => undefined,
    getCurrentDirectory: () => '/',
    getCanonicalFileName: (f) => f,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => '\n',
    fileExists: (f) => f === FILE || libFile(f) !== undefined,
    readFile: () => undefined,
  };
}

/** The type errors of `code`, in source order; empty when it checks. */
export function typeCheck(code: string): Diagnostic[] {
  const program = ts.createProgram({ rootNames: [AMBIENT, FILE], options: OPTIONS, host: host(code) });
  const file = program.getSourceFile(FILE);
  if (!file) throw new Error('the type checker lost the submitted file');
  const found = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
  return found
    .filter((d) => d.category === ts.DiagnosticCategory.Error)
    .map((d) => {
      const at = d.start === undefined ? null : file.getLineAndCharacterOfPosition(d.start);
      return {
        line: at ? at.line + 1 : null,
        column: at ? at.character + 1 : null,
        message: `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
      };
    });
}
