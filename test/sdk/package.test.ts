import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * `warden/sdk` is usable anywhere fetch is: no runtime dependency, not even a Node built-in, and it
 * is what package.json exports under `./sdk` (built, typed, and from source for the examples).
 */
const dir = new URL('../../src/sdk/', import.meta.url);

describe('the warden/sdk package entry', () => {
  it('imports nothing but its own modules (zero runtime dependencies)', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files).toContain('index.ts');
    for (const file of files) {
      const source = readFileSync(new URL(file, dir), 'utf8');
      const specifiers = [...source.matchAll(/^(?:import|export)[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]);
      for (const specifier of specifiers)
        expect(specifier, `${file} imports ${specifier}`).toMatch(/^\.\/[\w-]+\.js$/);
    }
  });

  it('is exported as ./sdk next to the existing entry and bin', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      bin: Record<string, string>;
      main: string;
      exports: Record<string, unknown>;
    };
    expect(pkg.exports['./sdk']).toEqual({
      types: './dist/sdk/index.d.ts',
      source: './src/sdk/index.ts',
      default: './dist/sdk/index.js',
    });
    expect(pkg.exports['.']).toBe(`./${pkg.main}`);
    expect(pkg.bin.warden).toBe('bin/warden.js');
  });
});
