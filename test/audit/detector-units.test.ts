// The detectors' pure parts: CIDR zones over IPv4 and IPv6 (longest prefix, mapped
// addresses, boundaries), a MaxMind database built here and read through `maxmind`,
// working hours across time zones and DST, the sliding window's once-per-window rule.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BurstTracker, distanceKm, LocationResolver, MaxMindLookup, normalizeIp, parseCidr, percentile, withinHours } from '../../src/audit/index.ts';
import { parseConfig } from '../../src/core/index.ts';
import { buildMmdb } from './mmdb-writer.ts';

const ZONES = [
  { name: 'office', cidrs: ['198.51.100.0/24', '2001:db8:10::/48'], country: 'FR', lat: 48.86, lon: 2.35 },
  { name: 'office-vpn', cidrs: ['198.51.100.128/25'] },
  { name: 'lab', cidrs: ['2001:db8:10:ff00::/56'] },
  { name: 'everything-v6', cidrs: ['::/0'] },
];

describe('location resolver: CIDR zones', () => {
  const r = new LocationResolver(ZONES.slice(0, 3));

  test('IPv4: network boundaries and the longest prefix', () => {
    assert.equal(r.resolve('198.51.100.0')?.zone, 'office');
    assert.equal(r.resolve('198.51.100.127')?.zone, 'office');
    assert.equal(r.resolve('198.51.100.128')?.zone, 'office-vpn');
    assert.equal(r.resolve('198.51.100.255')?.zone, 'office-vpn');
    assert.equal(r.resolve('198.51.101.0'), null);
    assert.equal(r.resolve('198.51.99.255'), null);
    assert.deepEqual(r.resolve('198.51.100.7'), { zone: 'office', country: 'FR', lat: 48.86, lon: 2.35, source: 'zone' });
  });

  test('IPv6: boundaries, longest prefix, textual forms', () => {
    assert.equal(r.resolve('2001:db8:10::1')?.zone, 'office');
    assert.equal(r.resolve('2001:DB8:10:FFFF:FFFF:FFFF:FFFF:FFFF')?.zone, 'lab');
    assert.equal(r.resolve('2001:db8:10:ff00::')?.zone, 'lab');
    assert.equal(r.resolve('2001:db8:10:ffff::1')?.zone, 'lab');
    assert.equal(r.resolve('2001:db8:10:fe00::')?.zone, 'office');
    assert.equal(r.resolve('2001:db8:10:feff:ffff:ffff:ffff:ffff')?.zone, 'office');
    assert.equal(r.resolve('2001:db8:11::1'), null);
    assert.equal(r.resolve('2001:0db8:0010:0000:0000:0000:0000:0001')?.zone, 'office');
    assert.equal(r.resolve('fe80::1%eth0'), null);
  });

  test('IPv4-mapped IPv6 addresses match IPv4 zones, in both notations', () => {
    assert.equal(r.resolve('::ffff:198.51.100.7')?.zone, 'office');
    assert.equal(r.resolve('::ffff:c633:6480')?.zone, 'office-vpn'); // 198.51.100.128
    assert.deepEqual(normalizeIp('::ffff:7f00:1'), { address: '127.0.0.1', family: 'ipv4' });
    // ::/0 is an IPv6 zone: it does not swallow IPv4 clients.
    const all = new LocationResolver(ZONES);
    assert.equal(all.resolve('203.0.113.1'), null);
    assert.equal(all.resolve('2001:db8:99::1')?.zone, 'everything-v6');
  });

  test('garbage is no address, and bad CIDRs are refused by the config schema', () => {
    for (const bad of ['', 'localhost', '1.2.3', '1.2.3.4.5', '::g', '1:2:3:4:5:6:7:8:9', '198.51.100.7/24']) assert.equal(r.resolve(bad), null, bad);
    assert.equal(parseCidr('10.0.0.0/33'), null);
    assert.equal(parseCidr('2001:db8::/129'), null);
    assert.deepEqual(parseCidr('::ffff:10.0.0.0/104'), { address: '10.0.0.0', family: 'ipv4', prefix: 8 });
    for (const cidrs of [['10.0.0.0/33'], ['10.0.0.0'], ['::1/200'], ['nope/8']]) {
      assert.throws(() => parseConfig({ detectors: { zones: [{ name: 'z', cidrs }] } }), /invalid configuration/);
    }
    assert.throws(() => parseConfig({ detectors: { zones: [{ name: 'z', cidrs: ['10.0.0.0/8'], lat: 1 }] } }), /invalid configuration/);
    assert.throws(() => parseConfig({ detectors: { offHours: { default: { timeZone: 'Mars/Olympus' } } } }), /invalid configuration/);
  });

  test('distance: Paris to Sydney is about 16,960 km', () => {
    const km = distanceKm(48.8566, 2.3522, -33.8688, 151.2093);
    assert.ok(km > 16_900 && km < 17_000, String(km));
    assert.equal(distanceKm(1, 1, 1, 1), 0);
  });
});

describe('location resolver: MaxMind database (maxmind package)', () => {
  const db = buildMmdb([
    { cidr: '192.0.2.0/24', data: { country: { iso_code: 'DE' }, location: { latitude: 52.52, longitude: 13.405 } } },
    { cidr: '2001:db8:beef::/48', data: { country: { iso_code: 'JP' }, location: { latitude: 35.6762, longitude: 139.6503 } } },
    { cidr: '198.51.100.0/24', data: { registered_country: { iso_code: 'US' } } },
  ]);

  test('IPv4 and IPv6 records resolve to country zones with coordinates; zones win over GeoIP', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mk-mmdb-'));
    try {
      const file = join(dir, 'test.mmdb');
      writeFileSync(file, db);
      const r = new LocationResolver([{ name: 'office', cidrs: ['198.51.100.0/25'] }], MaxMindLookup.fromFile(file));
      assert.deepEqual(r.resolve('192.0.2.77'), { zone: 'geo:DE', country: 'DE', lat: 52.52, lon: 13.405, source: 'geoip' });
      assert.deepEqual(r.resolve('::ffff:192.0.2.1'), { zone: 'geo:DE', country: 'DE', lat: 52.52, lon: 13.405, source: 'geoip' });
      assert.deepEqual(r.resolve('2001:db8:beef:1::9'), { zone: 'geo:JP', country: 'JP', lat: 35.6762, lon: 139.6503, source: 'geoip' });
      assert.equal(r.resolve('198.51.100.3')?.zone, 'office');
      assert.deepEqual(r.resolve('198.51.100.200'), { zone: 'geo:US', country: 'US', lat: null, lon: null, source: 'geoip' });
      assert.equal(r.resolve('192.0.3.1'), null);
      assert.equal(r.resolve('2001:db8:bef0::1'), null);
      assert.throws(() => MaxMindLookup.fromFile(join(dir, 'missing.mmdb')), /geoipFile/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('working hours', () => {
  const paris = { timeZone: 'Europe/Paris', days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, start: '09:00', end: '18:00' };

  test('read in the zone, including daylight saving time', () => {
    // Wed 7 Jan 2026 (CET, UTC+1)
    assert.equal(withinHours({ ...paris, days: [...paris.days] }, new Date('2026-01-07T08:00:00Z')), true); // 09:00
    assert.equal(withinHours({ ...paris, days: [...paris.days] }, new Date('2026-01-07T07:59:00Z')), false); // 08:59
    assert.equal(withinHours({ ...paris, days: [...paris.days] }, new Date('2026-01-07T17:00:00Z')), false); // 18:00
    // Wed 8 Jul 2026 (CEST, UTC+2): 07:30Z is 09:30 local
    assert.equal(withinHours({ ...paris, days: [...paris.days] }, new Date('2026-07-08T07:30:00Z')), true);
    // Sat 10 Jan 2026
    assert.equal(withinHours({ ...paris, days: [...paris.days] }, new Date('2026-01-10T10:00:00Z')), false);
    // Fri 23:30Z is Sat 08:30 in Tokyo
    assert.equal(withinHours({ timeZone: 'Asia/Tokyo', days: ['fri'], start: '00:00', end: '23:59' }, new Date('2026-01-09T23:30:00Z')), false);
  });

  test('an overnight shift belongs to the day it starts', () => {
    const night = { timeZone: 'UTC', days: ['mon' as const], start: '22:00', end: '06:00' };
    assert.equal(withinHours(night, new Date('2026-01-05T23:00:00Z')), true); // Mon 23:00
    assert.equal(withinHours(night, new Date('2026-01-06T05:59:00Z')), true); // Tue 05:59, Monday's shift
    assert.equal(withinHours(night, new Date('2026-01-06T06:00:00Z')), false);
    assert.equal(withinHours(night, new Date('2026-01-06T23:00:00Z')), false); // Tue night: no shift
  });
});

describe('sliding window', () => {
  const e = (t: number, seq: number, amount = 1) => ({ t, seq, amount, tag: 'u', projectId: 'p' });

  test('fires once when the count is reached within the window, then once per window', () => {
    const w = new BurstTracker({ windowMs: 60_000, count: 3 });
    assert.equal(w.add('k', e(0, 1)), null);
    assert.equal(w.add('k', e(20_000, 2)), null);
    assert.equal(w.add('k', e(70_000, 3)), null); // the first slid out
    const b = w.add('k', e(71_000, 4));
    assert.equal(b?.count, 3);
    assert.deepEqual(
      b?.entries.map((x) => x.seq),
      [2, 3, 4],
    );
    assert.equal(w.add('k', e(72_000, 5)), null); // same incident
    assert.equal(w.add('other', e(72_000, 6)), null);
    for (let i = 0; i < 3; i++) w.add('k', e(125_000 + i, 10 + i));
    assert.equal(w.add('k', e(131_500, 20))?.count, 3); // a window later: a new incident
  });

  test('a byte sum fires before the count', () => {
    const w = new BurstTracker({ windowMs: 60_000, count: 100, sum: 1000 });
    assert.equal(w.add('k', e(0, 1, 600)), null);
    assert.equal(w.add('k', e(1, 2, 400))?.sum, 1000);
  });

  test('percentiles are nearest-rank', () => {
    assert.equal(percentile([], 50), null);
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 99), 4);
  });
});
