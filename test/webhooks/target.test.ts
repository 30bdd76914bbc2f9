import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhooksConfigSchema } from '../../src/config/webhooks.js';
import { post } from '../../src/webhooks/post.js';
import { CallbackRefused, checkCallbackUrl, targetPolicy, type Resolver } from '../../src/webhooks/target.js';
import { startReceiver, type Receiver } from './receiver.js';

/** Where a callback may go, and that a delivery connects to the address that was checked. */

const policy = (over: Record<string, unknown> = {}) => targetPolicy(webhooksConfigSchema.parse(over));
const refused = (url: string, p = policy(), resolve?: Resolver) =>
  checkCallbackUrl(url, p, resolve).then(
    () => 'allowed',
    (err: Error) => (err instanceof CallbackRefused ? `refused: ${err.message}` : `error: ${err.message}`),
  );

describe('callback targets', () => {
  it.each([
    'http://127.0.0.1/hook',
    'http://127.9.9.9:8080/',
    'http://10.0.0.1/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:169.254.169.254]/',
    'http://[fd00:ec2::254]/',
    'http://[fe80::1]/',
    'http://[fc00::1]/',
    'http://0.0.0.0/',
    'http://[::]/',
    'http://224.0.0.1/',
    'http://localhost/',
    'http://2130706433/', // 127.0.0.1 as one number: the URL parser makes it 127.0.0.1
    'http://0x7f.1/',
  ])('refuses %s by default', async (url) => {
    expect(await refused(url)).toMatch(/^refused: /);
  });

  it('refuses schemes other than http(s) and what is not a URL', async () => {
    expect(await refused('ftp://example.com/')).toMatch(/^refused: the scheme must be http or https/);
    expect(await refused('file:///etc/passwd')).toMatch(/^refused: the scheme/);
    expect(await refused('not a url')).toBe('refused: not a URL');
  });

  it('refuses a name when any of its addresses is private (a rebinding shape)', async () => {
    const both: Resolver = async () => ['93.184.216.34', '10.1.2.3'];
    expect(await refused('https://hooks.example/', policy(), both)).toBe(
      'refused: hooks.example resolves to 10.1.2.3 is private',
    );
    const publicOnly: Resolver = async () => ['93.184.216.34'];
    expect(await refused('https://hooks.example/', policy(), publicOnly)).toBe('allowed');
  });

  it('opens private addresses only as the operator says, and metadata only by the allowlist', async () => {
    const open = policy({ allowPrivate: true });
    expect(await refused('http://127.0.0.1/', open)).toBe('allowed');
    expect(await refused('http://10.0.0.1/', open)).toBe('allowed');
    expect(await refused('http://169.254.169.254/', open)).toMatch(/^refused: /);
    expect(await refused('http://[::ffff:169.254.169.254]/', open)).toMatch(/^refused: /);
    expect(await refused('http://[fd00:ec2::254]/', open)).toMatch(/^refused: /);
    expect(await refused('http://169.254.170.2/v2/credentials', open)).toMatch(/^refused: /);
    expect(await refused('http://[64:ff9b::a9fe:a9fe]/', open)).toMatch(/^refused: /); // NAT64 form
    expect(await refused('http://[fd00::1]/', open)).toBe('allowed');
    const listed = policy({ allowlist: ['127.0.0.2/32', '169.254.169.254'] });
    expect(await refused('http://127.0.0.2:9/', listed)).toBe('allowed');
    expect(await refused('http://127.0.0.1:9/', listed)).toMatch(/^refused: /);
    expect(await refused('http://169.254.169.254/', listed)).toBe('allowed');
  });

  it('refuses an allowlist entry that is neither a CIDR nor a name in the config', () => {
    expect(() => webhooksConfigSchema.parse({ allowlist: ['10.0.0.0/99'] })).toThrow(/CIDR/);
  });
});

describe('delivery connects to the checked address', () => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver('127.0.0.2');
  });
  afterAll(() => receiver.close());

  it('uses the address the check resolved, with the URL’s host name as Host (no second lookup)', async () => {
    // `hooks.invalid` exists in no DNS: reaching the receiver proves no second lookup happened.
    const resolve: Resolver = async (host) => (host === 'hooks.invalid' ? ['127.0.0.2'] : []);
    const target = await checkCallbackUrl(
      `http://hooks.invalid:${receiver.port}/cb?x=1`,
      policy({ allowlist: ['127.0.0.2/32'] }),
      resolve,
    );
    const outcome = await post(target, '{"a":1}', { timeoutMs: 5000, maxResponseBytes: 1024, headers: {} });
    expect(outcome).toMatchObject({ statusCode: 200, error: null });
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]).toMatchObject({ path: '/cb?x=1', body: '{"a":1}' });
    expect(receiver.received[0]!.headers.host).toBe(`hooks.invalid:${receiver.port}`);
    expect(receiver.received[0]!.headers.authorization).toBeUndefined();
  });

  it('sends credentials given in the URL as Basic authentication', async () => {
    const target = await checkCallbackUrl(
      `http://hook%20user:p%40ss@127.0.0.2:${receiver.port}/auth`,
      policy({ allowlist: ['127.0.0.2/32'] }),
    );
    await post(target, '{}', { timeoutMs: 5000, maxResponseBytes: 1024, headers: {} });
    const got = receiver.received.find((r) => r.path === '/auth');
    expect(got?.headers.authorization).toBe(`Basic ${Buffer.from('hook user:p@ss').toString('base64')}`);
  });

  it('follows no redirect, caps the body it reads, and gives up at its deadline', async () => {
    const target = await checkCallbackUrl(`${receiver.url}/r`, policy({ allowlist: ['127.0.0.2/32'] }));
    receiver.respond((_r, res) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end());
    expect(await post(target, '{}', { timeoutMs: 5000, maxResponseBytes: 10, headers: {} })).toMatchObject({
      statusCode: 302,
    });
    // An endless body: read up to the cap, then the connection is closed.
    receiver.respond((_r, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'.repeat(1024)), 1);
      res.on('close', () => clearInterval(timer));
    });
    expect(await post(target, '{}', { timeoutMs: 5000, maxResponseBytes: 4096, headers: {} })).toMatchObject({
      statusCode: 200,
      error: null,
    });
    // No answer at all: the deadline.
    receiver.respond(() => {});
    expect(await post(target, '{}', { timeoutMs: 200, maxResponseBytes: 10, headers: {} })).toMatchObject({
      statusCode: null,
      error: 'no answer within 200 ms',
    });
    receiver.respond((_r, res) => res.writeHead(200).end());
  });
});
