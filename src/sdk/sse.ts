/** A Server-Sent Events parser (the WHATWG event-stream format) over a fetch body. */

export interface SseEvent {
  /** `message` unless the event named itself. */
  event: string;
  data: string;
  /** The last `id:` seen so far in the stream (it carries over to later events), or null. */
  id: string | null;
}

/**
 * Events as they arrive; `onRetry` hears the server's `retry:` advice (ms). Ends when the stream does;
 * the reader is released however the caller stops reading.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  onRetry?: (ms: number) => void,
): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | null = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // A line ends at \n, \r\n or \r; a trailing \r may still be the first half of \r\n.
      const lines = buffer.split(/\r\n|\n|\r(?=.)/s);
      buffer = done ? '' : (lines.pop() ?? '');
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const raw = colon === -1 ? '' : line.slice(colon + 1);
        const text = raw.startsWith(' ') ? raw.slice(1) : raw;
        if (field === 'event') event = text;
        else if (field === 'data') data.push(text);
        else if (field === 'id' && !text.includes('\0')) id = text;
        else if (field === 'retry' && /^\d+$/.test(text)) onRetry?.(Number(text));
      }
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
