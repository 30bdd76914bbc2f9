import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * The service's pino logger (JSON lines). Submitted code, stdin and credentials never belong in a
 * log line; the redaction is a safety net for a careless `log.info({ request })`, not the policy.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'warden' },
    redact: {
      paths: [
        'req.headers.authorization',
        // Plugins log request headers of their own (@fastify/multipart's busboy options at trace).
        'headers.authorization',
        '*.headers.authorization',
        'req.headers["x-api-key"]',
        'code',
        'stdin',
        '*.code',
        '*.stdin',
        '*.test_cases',
        'request.request',
      ],
      censor: '[redacted]',
    },
  };
  // Tests read the very lines the service writes (e.g. that no API key is ever among them).
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Wraps a logging function so a flapping dependency (Redis reconnecting every second) leaves one
 * line per period instead of a flood.
 */
export function throttled<T>(periodMs: number, log: (value: T) => void): (value: T) => void {
  let last = 0;
  return (value) => {
    const now = Date.now();
    if (now - last < periodMs) return;
    last = now;
    log(value);
  };
}
