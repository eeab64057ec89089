// One ordered list of migrations, written with Kysely's schema builder so the same
// migrations serve SQLite and PostgreSQL. Each runs in its own transaction.
import { type Kysely, PostgresAdapter, sql } from 'kysely';
import type { Database } from './schema.ts';

export interface Migration {
  id: string;
  up(db: Kysely<Database>): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: the schema builder is untyped before tables exist
type AnyDb = Kysely<any>;

export const migrations: readonly Migration[] = [
  {
    id: '0001-skeleton',
    async up(kdb) {
      const db = kdb as AnyDb;
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('email', 'text')
        .addColumn('password_hash', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('deactivated_at', 'text')
        .execute();
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('csrf_hash', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('amr', 'text', (c) => c.notNull())
        .addColumn('auth_time', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_reason', 'text')
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
      await db.schema
        .createTable('projects')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('role_bindings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('principal_kind', 'text', (c) => c.notNull())
        .addColumn('principal_id', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addUniqueConstraint('role_bindings_unique', ['scope', 'principal_kind', 'principal_id', 'role'])
        .execute();
      await db.schema.createIndex('role_bindings_principal').on('role_bindings').columns(['principal_kind', 'principal_id']).execute();
      await db.schema
        .createTable('models')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('sensitivity', 'text', (c) => c.notNull())
        .addColumn('next_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addUniqueConstraint('models_project_name', ['project_id', 'name'])
        .execute();
      await db.schema
        .createTable('model_versions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('model_id', 'text', (c) => c.notNull().references('models.id'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('stage', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('finalized_at', 'text')
        .addColumn('stage_changed_at', 'text')
        .addUniqueConstraint('model_versions_model_version', ['model_id', 'version'])
        .execute();
      await db.schema
        .createTable('artifacts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('version_id', 'text', (c) => c.notNull().references('model_versions.id'))
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addUniqueConstraint('artifacts_version_path', ['version_id', 'path'])
        .execute();
      await db.schema
        .createTable('deployments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('environment', 'text', (c) => c.notNull())
        .addColumn('model_id', 'text', (c) => c.notNull().references('models.id'))
        .addColumn('version_id', 'text', (c) => c.notNull().references('model_versions.id'))
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .addUniqueConstraint('deployments_project_name', ['project_id', 'name'])
        .execute();
      await db.schema
        .createTable('pipeline_runs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
        .addColumn('pipeline', 'text', (c) => c.notNull())
        .addColumn('parameters', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('pipeline_runs_project').on('pipeline_runs').columns(['project_id', 'pipeline']).execute();
      await db.schema
        .createTable('audit_events')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('actor', 'text')
        .addColumn('session_id', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource', 'text')
        .addColumn('project_id', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('policy_version', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_events_project').on('audit_events').columns(['project_id', 'seq']).execute();
      // A single counter row: taking it inside the writing transaction serialises
      // writers, so sequence numbers are gap-free and in commit order on both backends.
      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('next_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.insertInto('audit_head').values({ id: 1, next_seq: 1 }).execute();
    },
  },
  {
    id: '0002-audit-merkle',
    async up(kdb) {
      const db = kdb as AnyDb;
      // Perfect, aligned subtrees of the RFC 6962 tree: level 0 holds leaf hashes; node
      // (L, i) covers leaves [i*2^L, (i+1)*2^L). Any root or proof is O(log n) reads.
      await db.schema
        .createTable('audit_nodes')
        .addColumn('level', 'integer', (c) => c.notNull())
        .addColumn('idx', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_nodes_pk', ['level', 'idx'])
        .execute();
      await db.schema
        .createTable('audit_tree_heads')
        .addColumn('tree_size', 'bigint', (c) => c.primaryKey())
        .addColumn('root_hash', 'text', (c) => c.notNull())
        .addColumn('timestamp', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_alerts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('rule', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('event_time', 'text', (c) => c.notNull())
        .addColumn('event_seq', 'bigint')
        .addColumn('actor', 'text')
        .addColumn('project_id', 'text')
        .addColumn('summary', 'text', (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('acknowledged_at', 'text')
        .addColumn('acknowledged_by', 'text')
        .execute();
      await db.schema.createIndex('audit_alerts_created').on('audit_alerts').column('created_at').execute();
    },
  },
  {
    id: '0003-identity-base',
    async up(kdb) {
      const db = kdb as AnyDb;
      // When a second factor last succeeded in the session: step-up is judged against it.
      await db.schema.alterTable('sessions').addColumn('mfa_at', 'text').execute();
      // Machine identities: they hold role bindings like users and authenticate with
      // client_credentials; only the hash of the client secret is kept.
      await db.schema
        .createTable('service_accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('project_id', 'text', (c) => c.references('projects.id'))
        .addColumn('client_id', 'text', (c) => c.notNull().unique())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('disabled_at', 'text')
        .execute();
    },
  },
  {
    id: '0006-mfa-throttle',
    async up(kdb) {
      const db = kdb as AnyDb;
      // One TOTP authenticator per user. confirmed_at null: enrollment pending. last_step:
      // the last accepted 30 s time step, so a code is accepted at most once (RFC 6238 s5.2).
      await db.schema
        .createTable('mfa_totp')
        .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id'))
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('confirmed_at', 'text')
        .addColumn('last_step', 'bigint')
        .execute();
      // Recovery codes: only a SHA-256 of each (80 random bits) is kept; used_at makes them single-use.
      await db.schema
        .createTable('mfa_recovery_codes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('code_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
      await db.schema.createIndex('mfa_recovery_codes_user').on('mfa_recovery_codes').column('user_id').execute();
      // A password login waiting for its second factor: the mfaToken's hash, short-lived, single-use.
      await db.schema
        .createTable('mfa_pending_logins')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('amr', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('consumed_at', 'text')
        .execute();
      // Failure counters with exponential back-off, shared by every server process.
      await db.schema
        .createTable('auth_throttle')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('blocked_until', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // logout-all: access tokens issued before this instant are dead (compare their iat).
      await db.schema.alterTable('users').addColumn('tokens_not_before', 'text').execute();
    },
  },
  {
    id: '0007-webauthn',
    async up(kdb) {
      const db = kdb as AnyDb;
      // Passkeys. credential_id is unique across every account: one authenticator
      // credential can never be bound to two users (MC-AUTHN-06).
      await db.schema
        .createTable('webauthn_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('credential_id', 'text', (c) => c.notNull().unique())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('counter', 'bigint', (c) => c.notNull())
        .addColumn('transports', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('aaguid', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('webauthn_credentials_user').on('webauthn_credentials').column('user_id').execute();
      // Challenges live server-side (only their hash), are spent on first use and expire fast.
      await db.schema
        .createTable('webauthn_challenges')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('challenge_hash', 'text', (c) => c.notNull().unique())
        .addColumn('ceremony', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('binding', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
      await db.schema.createIndex('webauthn_challenges_expires').on('webauthn_challenges').column('expires_at').execute();
    },
  },
  {
    id: '0008-oauth',
    async up(kdb) {
      const db = kdb as AnyDb;
      // Per-user not-before for access tokens (logout-all). Another migration may add the same
      // column (identity MFA): whichever runs first adds it.
      const users = (await db.introspection.getTables()).find((t) => t.name === 'users');
      if (!users?.columns.some((c) => c.name === 'tokens_not_before')) {
        await db.schema.alterTable('users').addColumn('tokens_not_before', 'text').execute();
      }
      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('alg', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('private_jwk', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('retire_at', 'text', (c) => c.notNull())
        .addColumn('not_after', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('token_families')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('amr', 'text', (c) => c.notNull())
        .addColumn('auth_time', 'text', (c) => c.notNull())
        .addColumn('mfa_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_reason', 'text')
        .execute();
      await db.schema.createIndex('token_families_user').on('token_families').column('user_id').execute();
      await db.schema
        .createTable('refresh_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('family_id', 'text', (c) => c.notNull().references('token_families.id'))
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
      await db.schema.createIndex('refresh_tokens_family').on('refresh_tokens').column('family_id').execute();
      await db.schema
        .createTable('device_authorizations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('device_code_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_code', 'text', (c) => c.notNull().unique())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('interval_seconds', 'integer', (c) => c.notNull())
        .addColumn('last_poll_at', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('user_id', 'text', (c) => c.references('users.id'))
        .addColumn('amr', 'text')
        .addColumn('auth_time', 'text')
        .addColumn('mfa_at', 'text')
        .addColumn('decided_at', 'text')
        .addColumn('family_id', 'text')
        .execute();
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text', (c) => c.references('projects.id'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema.createIndex('api_keys_user').on('api_keys').column('user_id').execute();
    },
  },
  {
    id: '0009-audit-append-layout',
    async up(kdb) {
      // Keys that grow with every append, so a group commit writes to the right edge of
      // each B-tree instead of one page per tree level. Tree nodes were keyed (level, idx):
      // the nodes an append completes have consecutive levels and land in as many places;
      // keyed by the seq of the append that completed them (end_seq = (idx + 1) * 2^level)
      // and then level, they are adjacent. On SQLite the node table becomes one B-tree
      // (WITHOUT ROWID), and audit_events' "bigint primary key" (a separate index beside the
      // rowid) becomes INTEGER PRIMARY KEY, the rowid itself. Logical columns are unchanged.
      const db = kdb as AnyDb;
      if (db.getExecutor().adapter instanceof PostgresAdapter) {
        await sql`ALTER TABLE audit_nodes ADD COLUMN end_seq bigint`.execute(db);
        await sql`UPDATE audit_nodes SET end_seq = (idx + 1) << level`.execute(db);
        await sql`ALTER TABLE audit_nodes ALTER COLUMN end_seq SET NOT NULL`.execute(db);
        await sql`ALTER TABLE audit_nodes DROP CONSTRAINT audit_nodes_pk`.execute(db);
        await sql`ALTER TABLE audit_nodes ADD CONSTRAINT audit_nodes_pk PRIMARY KEY (end_seq, level)`.execute(db);
        return;
      }
      // The columns as migration 0001 created them (a migration keeps its own copy).
      const columns = sql.raw('seq, time, actor_id, actor, session_id, ip, user_agent, action, resource, project_id, outcome, reason, policy_version, request_id, details');
      await sql`CREATE TABLE audit_events_0009 (
        seq INTEGER PRIMARY KEY, time text NOT NULL, actor_id text, actor text, session_id text, ip text,
        user_agent text, action text NOT NULL, resource text, project_id text, outcome text NOT NULL,
        reason text, policy_version text, request_id text, details text NOT NULL)`.execute(db);
      await sql`INSERT INTO audit_events_0009 (${columns}) SELECT ${columns} FROM audit_events ORDER BY seq`.execute(db);
      await sql`DROP TABLE audit_events`.execute(db);
      await sql`ALTER TABLE audit_events_0009 RENAME TO audit_events`.execute(db);
      await db.schema.createIndex('audit_events_project').on('audit_events').columns(['project_id', 'seq']).execute();
      await sql`CREATE TABLE audit_nodes_0009 (
        end_seq INTEGER NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL, hash text NOT NULL,
        PRIMARY KEY (end_seq, level)) WITHOUT ROWID`.execute(db);
      await sql`INSERT INTO audit_nodes_0009 (end_seq, level, idx, hash) SELECT (idx + 1) << level, level, idx, hash FROM audit_nodes`.execute(db);
      await sql`DROP TABLE audit_nodes`.execute(db);
      await sql`ALTER TABLE audit_nodes_0009 RENAME TO audit_nodes`.execute(db);
    },
  },
];

export async function migrate(db: Kysely<Database>, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  await db.transaction().execute(async (trx) => {
    // Under the same lock as the migrations: concurrent CREATE TABLE IF NOT EXISTS on
    // PostgreSQL races on the catalog (duplicate key in pg_type) and fails one server.
    if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(7470)`.execute(trx);
    await (trx as AnyDb).schema
      .createTable('modelkeep_migrations')
      .ifNotExists()
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .execute();
  });
  const applied: string[] = [];
  for (const m of migrations) {
    await db.transaction().execute(async (trx) => {
      // Several servers may start at once against one PostgreSQL: one migrates at a time.
      if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(7470)`.execute(trx);
      const done = await trx.selectFrom('modelkeep_migrations').select('id').where('id', '=', m.id).executeTakeFirst();
      if (done) return;
      await m.up(trx);
      await trx.insertInto('modelkeep_migrations').values({ id: m.id, applied_at: new Date().toISOString() }).execute();
      applied.push(m.id);
    });
  }
  return applied;
}
