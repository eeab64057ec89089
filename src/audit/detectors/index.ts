export { DetectorEngine, type DetectorEngineDeps } from './engine.ts';
export { distanceKm, type GeoLookup, ipv6Bytes, type Location, LocationResolver, MaxMindLookup, normalizeIp, parseCidr } from './location.ts';
export { MetricsExporter, percentile, renderMetrics, type TimeToDetect, timeToDetect } from './metrics.ts';
export type { Detection, DetectorsConfig, Rule } from './types.ts';
export { type AlertWebhookOptions, AlertWebhooks, type AlertWebhookTarget, alertPayload } from './webhook.ts';
export { BoundedMap, BurstTracker } from './windows.ts';
export { localTime, type WorkingHours, withinHours } from './working-hours.ts';
