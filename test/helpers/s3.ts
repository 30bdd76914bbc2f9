import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** s3rver ships no types: the part of its API the tests use. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer: Server;
}
type S3rverClass = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

/** s3rver registers this one key pair; it checks the access key id but not SigV4 signatures. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** The `artifacts.s3` config section pointing at this server. */
  config: {
    endpoint: string;
    region: string;
    bucket: string;
    accessKeyId: string;
    secretAccessKey: string;
    forcePathStyle: true;
  };
  /** Called with each request's method and URL as it arrives. */
  onRequest(listener: (method: string, url: string) => void): void;
  close(): Promise<void>;
}

/** A real S3-compatible server (s3rver) on a free loopback port, its data in a temp dir. */
export async function startTestS3(bucket = 'warden-artifacts'): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'warden-s3-'));
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    config: { endpoint, region: 'us-east-1', bucket, forcePathStyle: true, ...S3RVER_CREDENTIALS },
    onRequest(listener) {
      server.httpServer.on('request', (req) => listener(req.method ?? '', req.url ?? ''));
    },
    async close() {
      // Keep-alive sockets of the SDK and of fetch would hold close() open.
      const closed = server.close();
      server.httpServer.closeAllConnections();
      await closed;
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
