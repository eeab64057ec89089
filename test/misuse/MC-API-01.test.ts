// MC-API-01 — slowloris and slow bodies. With short configured timeouts, connections that
// trickle a request head are closed by the server (while a legitimate request is still
// served), a JSON body trickled after a complete head is cut, an upload whose body stalls
// is closed and its temp file removed, and idle connections (kept alive, or never used)
// are closed. Loopback only; every wait is bounded polling for a
// 'close' event, never a measurement of speed; every socket is destroyed at the end.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

const TIMEOUTS = { headersMs: 1000, bodyMs: 1000, idleSocketMs: 2000, keepAliveMs: 500 };
const ATTACK_SOCKETS = 300;
/** Every byte-trickle writes more often than the idle timeout, so only the head/body deadlines can end it. */
const TRICKLE_MS = 250;

interface Tracked {
  socket: Socket;
  closed: boolean;
  received: string;
  /** Bytes of the planned payload written so far. */
  sent: number;
}

/** Polls `done` every 50 ms until it holds or `boundMs` passes; returns whether it held. */
async function until(done: () => boolean, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function open(url: string): Promise<Tracked> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    const t: Tracked = { socket, closed: false, received: '', sent: 0 };
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      t.received += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      t.closed = true;
    });
    socket.once('connect', () => resolve(t));
    socket.once('error', reject);
  });
}

/** Writes the next byte of `payload` to every open socket each TRICKLE_MS; returns a stop function. */
function trickle(sockets: readonly Tracked[], payload: string): () => void {
  const timer = setInterval(() => {
    for (const t of sockets) {
      if (t.closed || t.sent >= payload.length) continue;
      t.socket.write(payload[t.sent] ?? '');
      t.sent++;
    }
  }, TRICKLE_MS);
  return () => clearInterval(timer);
}

for (const backend of BACKENDS) {
  describe(`MC-API-01 slowloris and slow bodies (${backend})`, () => {
    let w: World;
    let server: World['server'];
    const everySocket: Tracked[] = [];

    before(async () => {
      w = await world(backend, { config: { timeouts: TIMEOUTS } });
      server = w.server;
      const c = w.as['ml-engineer'];
      assert.equal((await c.post('/v1/projects/fraud/models', { name: 'slow' })).status, 201);
      assert.equal((await c.post('/v1/projects/fraud/models/slow/versions', {})).status, 201);
    });
    after(async () => {
      for (const t of everySocket) t.socket.destroy();
      await server.close();
    });

    test(`${ATTACK_SOCKETS} connections trickling a request head are closed by the server; a legitimate request is served meanwhile`, async () => {
      // A head that would take minutes to finish at this rate: only the server can end it.
      const head = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Filler: ${'a'.repeat(400)}\r\n\r\n`;
      const attack: Tracked[] = [];
      let stop = () => {};
      try {
        for (let i = 0; i < ATTACK_SOCKETS; i++) {
          const t = await open(server.url);
          attack.push(t);
          everySocket.push(t);
        }
        stop = trickle(attack, head);

        // During the attack, an ordinary client is still served.
        const legit = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
        assert.equal(legit.status, 200);
        assert.deepEqual(await legit.json(), { status: 'ok' });

        const allClosed = await until(() => attack.every((t) => t.closed), 20_000);
        const open_ = attack.filter((t) => !t.closed).length;
        assert.ok(allClosed, `${open_} of ${ATTACK_SOCKETS} slow-head connections are still open`);
        for (const t of attack) {
          assert.ok(t.sent < head.length, 'the head was never completed: the server closed it');
          assert.ok(t.received === '' || /^HTTP\/1\.1 4\d\d/.test(t.received), `unexpected answer: ${t.received.slice(0, 80)}`);
        }
        // After the attack, the server still answers.
        const afterwards = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
        assert.equal(afterwards.status, 200);
      } finally {
        stop();
        for (const t of attack) t.socket.destroy();
      }
    });

    test('a JSON body trickled after a complete head is cut', async () => {
      const body = `{"username":"viewer","password":"${'p'.repeat(400)}"}`;
      const t = await open(server.url);
      everySocket.push(t);
      t.socket.write(`POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
      const stop = trickle([t], body);
      try {
        const cut = await until(() => t.closed || /^HTTP\/1\.1 4\d\d/.test(t.received), 15_000);
        assert.ok(cut, `the slow body is still being accepted after ${t.sent} bytes`);
        assert.ok(t.sent < body.length, 'the body never completed: the server cut it');
        assert.ok(t.received === '' || /^HTTP\/1\.1 4\d\d/.test(t.received), `unexpected answer: ${t.received.slice(0, 80)}`);
        assert.ok(await until(() => t.closed, 15_000), 'the connection is closed');
      } finally {
        stop();
        t.socket.destroy();
      }
    });

    test('an upload whose body stalls after the head is closed, and its temp file removed', async () => {
      const c = w.as['ml-engineer'];
      const t = await open(server.url);
      everySocket.push(t);
      t.socket.write(
        `PUT /v1/projects/fraud/models/slow/versions/1/artifacts/stalled.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${c.cookie}\r\n` +
          `X-CSRF-Token: ${c.csrf}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(1000)}`,
      );
      try {
        // The upload is under way, then the client goes silent: no byte, no close.
        assert.ok(await until(() => t.closed, 15_000), 'a stalled upload still holds its connection');
        // Removal follows the close asynchronously: poll for it, bounded.
        let temps = await server.services.blobs.tempFiles();
        for (let i = 0; i < 100 && temps.length > 0; i++) {
          await new Promise((r) => setTimeout(r, 50));
          temps = await server.services.blobs.tempFiles();
        }
        assert.deepEqual(temps, [], 'the stalled upload left a temp file behind');
        const v = await json<{ artifacts: unknown[] }>(await c.get('/v1/projects/fraud/models/slow/versions/1'));
        assert.deepEqual(v.artifacts, []);
      } finally {
        t.socket.destroy();
      }
    });

    test('an idle keep-alive connection is closed after its response', async () => {
      const t = await open(server.url);
      everySocket.push(t);
      t.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
      assert.ok(await until(() => t.received.includes('{"status":"ok"}'), 10_000), 'the first request is answered');
      assert.match(t.received, /^HTTP\/1\.1 200/);
      assert.doesNotMatch(t.received, /connection: close/i, 'the server offered to keep the connection alive');
      // Node's own default keep-alive is 5 s; the configured 500 ms must end it well before.
      assert.ok(await until(() => t.closed, 4_000), 'the idle keep-alive connection is still open');
      t.socket.destroy();
    });

    test('a connection that never sends a byte is closed', async () => {
      const t = await open(server.url);
      everySocket.push(t);
      assert.ok(await until(() => t.closed, 10_000), 'a silent connection is still open');
      t.socket.destroy();
    });
  });
}
