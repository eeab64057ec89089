// Streaming HTTP transfers over loopback. The client must cost far less than the server,
// or the figure measures the client: Node's own http client (llhttp, an IncomingMessage
// stream, a fresh 64 KiB buffer per read) tops out near 450 MiB/s on a 2-core VM where
// curl reads the same response at ~950 MiB/s. So a download is a raw HTTP/1.1 GET on a
// socket that reads into one reused 1 MiB buffer (net `onread`) and only counts bytes.
import { createReadStream } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { pipeline } from 'node:stream/promises';

const CLIENT_CHUNK = 1024 * 1024;

export interface Transfer {
  status: number;
  bytes: number;
  ms: number;
  body: string;
}

/**
 * GETs `url` (plain http, Content-Length responses) and counts the body bytes, which go
 * nowhere. Fails when the body is cut short (the server aborts a download whose blob no
 * longer matches its digest), so a PASS never hides a broken transfer.
 */
export function download(url: string, headers: Record<string, string>): Promise<Transfer> {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error('the benchmark client speaks plain http only');
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const head = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n${extra}\r\n`;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let pending: Buffer | null = Buffer.alloc(0); // header bytes until the blank line
    let status = 0;
    let length = -1;
    let bytes = 0;
    let doneMs: number | null = null;
    let settled = false;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve({ status, bytes, ms: doneMs ?? performance.now() - t0, body: '' });
    };
    const socket = connect({
      host: u.hostname,
      port: Number(u.port || 80),
      onread: {
        buffer: Buffer.allocUnsafe(CLIENT_CHUNK),
        callback: (n: number, buf: Uint8Array) => {
          if (pending !== null) {
            // The reused buffer is overwritten by the next read: copy the header bytes out.
            pending = Buffer.concat([pending, buf.subarray(0, n)]);
            const end = pending.indexOf('\r\n\r\n');
            if (end < 0) return true;
            const lines = pending.subarray(0, end).toString('latin1').split('\r\n');
            status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
            const cl = lines.find((l) => /^content-length:/i.test(l));
            length = cl ? Number(cl.slice(cl.indexOf(':') + 1).trim()) : -1;
            bytes = pending.length - (end + 4);
            pending = null;
            if (length < 0) {
              settle(new Error(`download answered ${status} without a Content-Length`));
              return false;
            }
          } else {
            bytes += n;
          }
          // The clock stops at the last byte; the socket is left for the server to close
          // (we sent Connection: close), as a polite client does: hanging up first would
          // make the server abort a response it has in fact finished.
          if (bytes >= length && doneMs === null) doneMs = performance.now() - t0;
          return true;
        },
      },
    });
    socket.on('connect', () => socket.write(head));
    socket.on('error', (err) => settle(err));
    socket.on('close', () => {
      if (doneMs !== null && bytes === length) settle(null);
      else settle(new Error(`download cut short after ${bytes} of ${length} body bytes (status ${status})`));
    });
  });
}

/** PUTs the file at `path` (of `size` bytes) as the request body, streamed in 1 MiB reads. */
export async function upload(url: string, headers: Record<string, string>, path: string, size: number): Promise<Transfer> {
  const t0 = performance.now();
  const req = request(url, {
    method: 'PUT',
    agent: false,
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) },
  });
  const response = new Promise<Transfer>((resolve, reject) => {
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: size, ms: performance.now() - t0, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
  });
  response.catch(() => {});
  await pipeline(createReadStream(path, { highWaterMark: CLIENT_CHUNK }), req);
  return response;
}
