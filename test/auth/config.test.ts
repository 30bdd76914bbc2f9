import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { isLoopbackHost } from '../../src/config/auth.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-auth-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** The config as `warden` reads it: a YAML file, then the environment. */
function load(file: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  const path = join(dir, `${++files}.yaml`);
  writeFileSync(path, stringify(file));
  return loadConfig({ env, path });
}

describe('auth configuration', () => {
  it('needs no key on loopback by default, and keys everywhere else', () => {
    expect(load({}).auth.mode).toBe('none');
    expect(load({ server: { host: '::1' } }).auth.mode).toBe('none');
    expect(load({}, { WARDEN_HOST: '0.0.0.0' }).auth.mode).toBe('keys');
    expect(load({ server: { host: '192.168.1.10' } }).auth.mode).toBe('keys');
    expect(load({ server: { host: '::' } }).auth.mode).toBe('keys');
    // Asked for explicitly, keys hold on loopback too.
    expect(load({ auth: { mode: 'keys' } }).auth.mode).toBe('keys');
  });

  it('refuses auth.mode none beyond loopback, naming the key and the way out', () => {
    for (const host of ['0.0.0.0', '10.0.0.5', '::', 'warden.example.com']) {
      expect(() => load({ auth: { mode: 'none' }, server: { host } })).toThrow(ConfigError);
      expect(() => load({ auth: { mode: 'none' }, server: { host } })).toThrow(
        /auth\.mode: none is allowed only when server\.host is a loopback address.*warden keys create/,
      );
    }
  });

  it('tells loopback addresses from the rest', () => {
    for (const host of [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
      'localhost',
      'LOCALHOST',
      '::ffff:127.0.0.1',
    ])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of [
      '0.0.0.0',
      '::',
      '10.0.0.1',
      '128.0.0.1',
      '::ffff:10.0.0.1',
      'localhost.evil.com',
      'example.com',
    ])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it('takes CORS origins as origins only', () => {
    expect(load({}).server.cors.origins).toEqual([]);
    expect(
      load({ server: { cors: { origins: ['https://app.example.com', 'http://localhost:3000'] } } }).server
        .cors,
    ).toEqual({ origins: ['https://app.example.com', 'http://localhost:3000'] });
    for (const bad of ['*', 'https://app.example.com/path', 'app.example.com', 'ftp://x'])
      expect(() => load({ server: { cors: { origins: [bad] } } }), bad).toThrow(/server\.cors\.origins\.0/);
  });
});
