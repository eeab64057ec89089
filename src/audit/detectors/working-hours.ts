// Working hours in a time zone: is an instant inside them? Read with Intl.DateTimeFormat,
// so daylight-saving changes follow the IANA database Node ships.

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

export interface WorkingHours {
  timeZone: string;
  days: readonly Weekday[];
  /** HH:MM local. start > end is an overnight shift that began on a listed day. */
  start: string;
  end: string;
}

const ORDER: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const SHORT: Record<string, Weekday> = { Sun: 'sun', Mon: 'mon', Tue: 'tue', Wed: 'wed', Thu: 'thu', Fri: 'fri', Sat: 'sat' };

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local weekday and minute of day of `at` in `timeZone`. */
export function localTime(at: Date, timeZone: string): { day: Weekday; minute: number; text: string } {
  const parts = formatter(timeZone).formatToParts(at);
  const get = (t: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === t)?.value ?? '';
  const day = SHORT[get('weekday')] ?? 'sun';
  const hour = Number(get('hour')) % 24;
  const minute = Number(get('minute'));
  return { day, minute: hour * 60 + minute, text: `${day} ${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}` };
}

const minutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export function withinHours(h: WorkingHours, at: Date): boolean {
  const { day, minute } = localTime(at, h.timeZone);
  const start = minutes(h.start);
  const end = minutes(h.end);
  if (start < end) return h.days.includes(day) && minute >= start && minute < end;
  // Overnight: the evening part belongs to today, the early-morning part to yesterday's shift.
  const yesterday = ORDER[(ORDER.indexOf(day) + 6) % 7] ?? 'sat';
  return (h.days.includes(day) && minute >= start) || (h.days.includes(yesterday) && minute < end);
}
