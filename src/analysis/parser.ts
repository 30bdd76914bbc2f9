import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Language, Parser } from 'web-tree-sitter';
import type { AnalysisLanguage } from './types.js';

// Resolved through the package system rather than relative to this file, so the same code works
// from src/ (tsx, vitest) and from dist/, and never touches the network.
const require = createRequire(import.meta.url);

const GRAMMAR_FILES: Record<AnalysisLanguage, string> = {
  python: 'tree-sitter-python/tree-sitter-python.wasm',
  javascript: 'tree-sitter-javascript/tree-sitter-javascript.wasm',
  typescript: 'tree-sitter-typescript/tree-sitter-typescript.wasm',
};

const WARM_UP_SNIPPETS: Record<AnalysisLanguage, string> = {
  python: 'import os\ndef f(x):\n    return [i * 2 for i in range(x)]\n',
  javascript: 'const fs = require("fs");\nfunction f(x) { return x.map((i) => i * 2); }\n',
  typescript: 'import fs from "fs";\nfunction f(x: number[]): number[] { return x.map((i) => i * 2); }\n',
};

let ready: Promise<Map<AnalysisLanguage, Parser>> | undefined;

async function load(): Promise<Map<AnalysisLanguage, Parser>> {
  const runtimeWasm = require.resolve('web-tree-sitter/web-tree-sitter.wasm');
  await Parser.init({ locateFile: () => runtimeWasm });
  const parsers = new Map<AnalysisLanguage, Parser>();
  for (const [language, file] of Object.entries(GRAMMAR_FILES) as [AnalysisLanguage, string][]) {
    // Reading the bytes ourselves keeps web-tree-sitter from choosing between fs and fetch.
    const bytes = await readFile(require.resolve(file));
    const parser = new Parser();
    parser.setLanguage(await Language.load(new Uint8Array(bytes)));
    // The first parse of each grammar is several times slower than later ones; pay it here.
    parser.parse(WARM_UP_SNIPPETS[language])?.delete();
    parsers.set(language, parser);
  }
  return parsers;
}

/** Loads the runtime and every grammar once; concurrent callers share the same promise. */
export function loadParsers(): Promise<Map<AnalysisLanguage, Parser>> {
  if (!ready) {
    ready = load().catch((err: unknown) => {
      // A failed load (e.g. a missing file) must not poison every later call.
      ready = undefined;
      throw err;
    });
  }
  return ready;
}

export async function getParser(language: AnalysisLanguage): Promise<Parser> {
  const parser = (await loadParsers()).get(language);
  if (!parser) throw new Error(`unsupported language: ${String(language)}`);
  return parser;
}
