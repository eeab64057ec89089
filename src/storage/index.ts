export { Kysely, sql, type Transaction } from 'kysely';
export type { BlobInfo, BlobRange, BlobStore, PutOptions } from './blob-store.ts';
export { type Db, type Dialect, openDatabase } from './database.ts';
export { type BusEvent, type EventBus, InProcessEventBus } from './event-bus.ts';
export { FsBlobStore } from './fs-blob-store.ts';
export { migrate, migrations } from './migrations.ts';
export type { Database } from './schema.ts';
export * from './schema.ts';
