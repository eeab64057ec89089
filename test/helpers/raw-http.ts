// Raw HTTP for misuse tests: `fetch` normalises paths ('..', '%2e'), trims header values
// and picks its own Content-Type, so attacks that depend on the literal bytes go through
// `node:http` (or a bare socket) instead.
import { type IncomingHttpHeaders, type OutgoingHttpHeaders, request } from 'node:http';
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface RawRequest {
  method: string;
  /** Sent exactly as given on the request line (no normalisation, no encoding). */
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Uint8Array;
}

/** One request on a fresh connection; resolves with the whole response. */
export function raw(base: string, r: RawRequest): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: r.method, path: r.path, headers: r.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

/** Writes `head` (and nothing else) on a bare socket and returns what comes back before the server closes. */
export function rawSocket(base: string, bytes: Buffer, timeoutMs = 10_000): Promise<{ status: number; text: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect({ host: u.hostname, port: Number(u.port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no answer from the server'));
    }, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
    s.write(bytes);
  });
}

/** The JSON error body of API.md, parsed (throws when the body is not that shape). */
export function errorOf(r: RawResponse | { text: string }): { code: string; message: string; requestId: string } {
  const b = JSON.parse(r.text.slice(r.text.indexOf('{'))) as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
  const e = b.error;
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string' || typeof e.requestId !== 'string') {
    throw new Error(`not an API error body: ${r.text.slice(0, 200)}`);
  }
  return { code: e.code, message: e.message, requestId: e.requestId };
}
