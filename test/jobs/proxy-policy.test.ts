import { describe, expect, it } from 'vitest';
import {
  addressRefusal,
  hostAllowed,
  isAllowPrivateEntry,
  normaliseHost,
  parseAllowPrivate,
  parseHostPattern,
  specialKind,
  type HostPattern,
} from '../../src/jobs/proxy-policy.js';
import { parseRequestHead } from '../../src/jobs/proxy.js';
import { parseGreeting, parseRequest } from '../../src/jobs/proxy-socks.js';

const patterns = (...list: string[]): HostPattern[] => list.map((p) => parseHostPattern(p)!);
const none = parseAllowPrivate([]);

describe('host allow-list', () => {
  const list = patterns('api.github.com', '*.Example.COM.', '93.184.216.34', '[2606:4700::1111]');

  it.each([
    ['api.github.com', true],
    ['API.GitHub.com', true],
    ['api.github.com.', true],
    ['x.api.github.com', false],
    ['github.com', false],
    ['evilapi.github.com', false],
    ['a.example.com', true],
    ['a.b.example.com.', true],
    ['example.com', false],
    ['evilexample.com', false],
    ['example.com.evil.net', false],
    ['93.184.216.34', true],
    ['93.184.216.35', false],
    ['[2606:4700::1111]', true],
    ['2606:4700:0:0:0:0:0:1111', true], // one spelling per IPv6 address
    ['2606:4700::1112', false],
    ['api.github.com\0.evil', false],
    ['api.github.com evil', false],
    ['under_score.example.com', false],
    ['', false],
    ['127.1', false],
    ['0x7f.1', false],
  ])('%j → %s', (host, expected) => {
    expect(hostAllowed(host, list)).toBe(expected);
  });

  it('a wildcard never matches an IP address, and bad patterns are refused', () => {
    expect(hostAllowed('1.2.3.4', patterns('*.example.com'))).toBe(false);
    expect(parseHostPattern('*.3.4')).toBeUndefined();
    expect(parseHostPattern('*.1.2.3')).toBeUndefined();
    expect(parseHostPattern('*')).toBeUndefined();
    expect(parseHostPattern('a..b')).toBeUndefined();
    expect(parseHostPattern('-a.com')).toBeUndefined();
    expect(normaliseHost('Host.Example.')).toBe('host.example');
    expect(normaliseHost('fe80::1%eth0')).toBeUndefined();
  });
});

describe('address classifier', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['100.64.0.1', 'CGNAT'],
    ['100.127.255.254', 'CGNAT'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['192.0.0.170', 'reserved'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback, inside an IPv6'],
    ['::ffff:7f00:1', 'loopback, inside an IPv6'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['2002:a9fe:a9fe::1', 'metadata'],
    ['2002:0a00:0001::', 'private'],
    ['2001:db8::1', 'documentation'],
  ])('%s is refused (%s)', (address, kind) => {
    expect(specialKind(address)).toContain(kind);
    expect(addressRefusal('example.com', address, none)).toMatch(/ is /);
  });

  it.each([
    '1.1.1.1',
    '8.8.8.8',
    '93.184.216.34',
    '100.63.255.255',
    '100.128.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '169.253.255.255',
    '2606:4700::1111',
    '2a00:1450:4001::200e',
    '::ffff:8.8.8.8',
    '2002:0808:0808::1',
  ])('%s is public', (address) => {
    expect(specialKind(address)).toBeUndefined();
    expect(addressRefusal('example.com', address, none)).toBeUndefined();
  });

  it('allowPrivate opens exactly the listed CIDRs and names, IPv4-mapped forms included', () => {
    const allow = parseAllowPrivate([
      '127.0.0.1/32',
      '10.0.0.0/8',
      'fd00::/8',
      'internal.corp',
      '*.svc.local',
    ]);
    expect(addressRefusal('x.com', '127.0.0.1', allow)).toBeUndefined();
    expect(addressRefusal('x.com', '::ffff:127.0.0.1', allow)).toBeUndefined();
    expect(addressRefusal('x.com', '127.0.0.2', allow)).toMatch(/loopback/);
    expect(addressRefusal('x.com', '::1', allow)).toMatch(/loopback/);
    expect(addressRefusal('x.com', '10.200.0.1', allow)).toBeUndefined();
    expect(addressRefusal('x.com', 'fd00::5', allow)).toBeUndefined();
    expect(addressRefusal('x.com', '169.254.169.254', allow)).toMatch(/metadata/);
    expect(addressRefusal('Internal.Corp.', '192.168.0.5', allow)).toBeUndefined();
    expect(addressRefusal('db.svc.local', '169.254.169.254', allow)).toBeUndefined();
    expect(addressRefusal('other.corp', '192.168.0.5', allow)).toMatch(/private/);
    expect(() => parseAllowPrivate(['10.0.0.0/33'])).toThrow(/allowPrivate/);
    expect(() => parseAllowPrivate(['not a host'])).toThrow(/allowPrivate/);
    expect(['10.0.0.0/8', '::1', 'db.internal', '*.svc'].every(isAllowPrivateEntry)).toBe(true);
    expect(['10.0.0.0/33', 'a b', '*', ''].some(isAllowPrivateEntry)).toBe(false);
  });
});

describe('proxy request heads', () => {
  it('CONNECT names host and port; IPv6 in brackets', () => {
    expect(parseRequestHead('CONNECT api.github.com:443 HTTP/1.1\r\nHost: x')).toEqual({
      host: 'api.github.com',
      port: 443,
    });
    expect(parseRequestHead('CONNECT [::1]:8443 HTTP/1.1')).toMatchObject({ host: '[::1]', port: 8443 });
  });

  it('an absolute http URL becomes origin-form with its own Host, Connection: close and no proxy credentials', () => {
    const t = parseRequestHead(
      'GET http://Example.com:8080/a/b?c=1 HTTP/1.1\r\nHost: fronted.evil.net\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nAccept: */*',
    );
    expect(t).toMatchObject({ host: 'example.com', port: 8080 });
    expect(t.head!.toString()).toBe(
      'GET /a/b?c=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n',
    );
    expect(parseRequestHead('GET http://example.com/ HTTP/1.0')).toMatchObject({ port: 80 });
  });

  it.each([
    'GET /relative HTTP/1.1',
    'GET https://example.com/ HTTP/1.1',
    'GET ftp://example.com/ HTTP/1.1',
    'GET http://user:pw@example.com/ HTTP/1.1',
    'CONNECT example.com HTTP/1.1',
    'CONNECT example.com:0 HTTP/1.1',
    'CONNECT example.com:70000 HTTP/1.1',
    'CONNECT a:b:443 HTTP/1.1',
    'get http://example.com/ HTTP/1.1',
    'GET http://example.com/ HTTP/2',
    'garbage',
  ])('refuses %j', (line) => {
    expect(() => parseRequestHead(line)).toThrow();
  });
});

describe('SOCKS5 messages', () => {
  it('waits for complete messages and reads every address type', () => {
    expect(parseGreeting(Buffer.from([5]))).toBeUndefined();
    expect(parseGreeting(Buffer.from([5, 2, 2]))).toBeUndefined();
    expect(parseGreeting(Buffer.from([5, 2, 2, 0]))).toEqual({ noAuth: true, used: 4 });
    expect(parseGreeting(Buffer.from([5, 1, 2]))).toEqual({ noAuth: false, used: 3 });
    const name = Buffer.from([5, 1, 0, 3, 11, ...Buffer.from('example.com'), 1, 187]);
    for (let n = 0; n < name.length; n++) expect(parseRequest(name.subarray(0, n))).toBeUndefined();
    expect(parseRequest(name)).toEqual({ host: 'example.com', port: 443, used: name.length });
    expect(parseRequest(Buffer.from([5, 1, 0, 1, 10, 0, 0, 1, 0, 80, 9]))).toEqual({
      host: '10.0.0.1',
      port: 80,
      used: 10,
    });
    const v6 = parseRequest(Buffer.from([5, 1, 0, 4, ...Array(15).fill(0), 1, 0, 22]));
    expect(v6).toMatchObject({ port: 22 });
    expect(normaliseHost((v6 as { host: string }).host)).toBe('::1');
    expect(parseRequest(Buffer.from([5, 3, 0, 1, 1, 2, 3, 4, 0, 53]))).toMatchObject({ error: 7 });
    expect(parseRequest(Buffer.from([5, 1, 0, 9, 0, 0, 0]))).toMatchObject({ error: 8 });
    expect(parseRequest(Buffer.from([4, 1, 0, 1, 0, 0, 0]))).toMatchObject({ error: 1 });
  });
});
