// Where an address is: a configured network zone (longest CIDR prefix wins, IPv4 and IPv6
// through node:net BlockList), else a MaxMind .mmdb database when one is configured.
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { type CityResponse, Reader } from 'maxmind';
import { ModelkeepError } from '../../core/index.ts';
import type { DetectorsConfig } from './types.ts';

export interface Location {
  /** Configured zone name, or `geo:CC` (country) from the GeoIP database. */
  zone: string;
  country: string | null;
  lat: number | null;
  lon: number | null;
  source: 'zone' | 'geoip';
}

export type Family = 'ipv4' | 'ipv6';

export interface ZoneDef {
  name: string;
  cidrs: readonly string[];
  country?: string | undefined;
  lat?: number | undefined;
  lon?: number | undefined;
}

interface Subnet {
  zone: ZoneDef;
  family: Family;
  prefix: number;
  list: BlockList;
}

/**
 * An address in canonical form: zone index dropped, and an IPv4-mapped IPv6 address
 * (::ffff:192.0.2.1, ::ffff:c000:201) read as the IPv4 address it carries, so IPv4 zones
 * match clients that reach a dual-stack socket. Null when it is not an IP address.
 */
export function normalizeIp(raw: string): { address: string; family: Family } | null {
  const address = raw.trim().replace(/%.*$/, '');
  const v = isIP(address);
  if (v === 4) return { address, family: 'ipv4' };
  if (v !== 6) return null;
  const b = ipv6Bytes(address);
  if (!b) return null;
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return { address: `${b[12]}.${b[13]}.${b[14]}.${b[15]}`, family: 'ipv4' };
  }
  return { address: address.toLowerCase(), family: 'ipv6' };
}

/** The 16 bytes of a valid IPv6 address (RFC 4291 §2.2 text forms, incl. a dotted IPv4 tail). */
export function ipv6Bytes(address: string): Uint8Array | null {
  let s = address;
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (isIP(tail) !== 4) return null;
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string | undefined): number[] | null => {
    if (part === undefined || part === '') return [];
    const groups = part.split(':');
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  if (!head || !rest) return null;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** Parses `ADDRESS/PREFIX`; an IPv4-mapped IPv6 network becomes its IPv4 network. */
export function parseCidr(cidr: string): { address: string; family: Family; prefix: number } | null {
  const slash = cidr.lastIndexOf('/');
  if (slash < 1) return null;
  const ip = normalizeIp(cidr.slice(0, slash));
  const p = cidr.slice(slash + 1);
  if (!ip || !/^[0-9]{1,3}$/.test(p)) return null;
  let prefix = Number(p);
  const wasMapped = ip.family === 'ipv4' && isIP(cidr.slice(0, slash)) === 6;
  if (wasMapped) {
    if (prefix < 96) return null;
    prefix -= 96;
  }
  if (prefix > (ip.family === 'ipv4' ? 32 : 128)) return null;
  return { ...ip, prefix };
}

/** The part of a GeoIP database the resolver reads. */
export interface GeoLookup {
  lookup(address: string): { country: string | null; lat: number | null; lon: number | null } | null;
}

/** A MaxMind GeoIP2/GeoLite2 City or Country database, read once into memory. */
export class MaxMindLookup implements GeoLookup {
  readonly #reader: Reader<CityResponse>;
  constructor(db: Buffer) {
    this.#reader = new Reader<CityResponse>(db);
  }
  static fromFile(file: string): MaxMindLookup {
    try {
      return new MaxMindLookup(readFileSync(file));
    } catch (err) {
      throw new ModelkeepError('invalid_input', 'detectors.geoipFile is not a readable MaxMind database', { cause: err });
    }
  }
  lookup(address: string): { country: string | null; lat: number | null; lon: number | null } | null {
    let r: CityResponse | null;
    try {
      r = this.#reader.get(address);
    } catch {
      return null;
    }
    if (!r) return null;
    const country = r.country?.iso_code ?? r.registered_country?.iso_code ?? null;
    const lat = r.location?.latitude ?? null;
    const lon = r.location?.longitude ?? null;
    return { country, lat, lon };
  }
}

export class LocationResolver {
  readonly #subnets: Subnet[] = [];
  readonly #geo: GeoLookup | null;

  constructor(zones: readonly ZoneDef[], geo: GeoLookup | null = null) {
    for (const zone of zones) {
      for (const cidr of zone.cidrs) {
        const c = parseCidr(cidr);
        if (!c) throw new ModelkeepError('invalid_input', `zone ${zone.name}: '${cidr}' is not a CIDR`);
        const list = new BlockList();
        list.addSubnet(c.address, c.prefix, c.family);
        this.#subnets.push({ zone, family: c.family, prefix: c.prefix, list });
      }
    }
    this.#geo = geo;
  }

  static fromConfig(cfg: Pick<DetectorsConfig, 'zones' | 'geoipFile'>): LocationResolver {
    return new LocationResolver(cfg.zones, cfg.geoipFile ? MaxMindLookup.fromFile(cfg.geoipFile) : null);
  }

  /** Null when the address is in no zone and the GeoIP database (if any) has no country for it. */
  resolve(ip: string | null): Location | null {
    if (ip === null) return null;
    const n = normalizeIp(ip);
    if (!n) return null;
    let best: Subnet | null = null;
    for (const s of this.#subnets) {
      // The most specific network wins: a VPN /25 inside an office /24 is the VPN.
      if (s.family === n.family && (best === null || s.prefix > best.prefix) && s.list.check(n.address, n.family)) best = s;
    }
    if (best) {
      const z = best.zone;
      return { zone: z.name, country: z.country ?? null, lat: z.lat ?? null, lon: z.lon ?? null, source: 'zone' };
    }
    const g = this.#geo?.lookup(n.address);
    if (!g || g.country === null) return null;
    return { zone: `geo:${g.country}`, country: g.country, lat: g.lat, lon: g.lon, source: 'geoip' };
  }
}

/** Great-circle distance in km (haversine, mean Earth radius). */
export function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
}
