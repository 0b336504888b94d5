import { randomUUID } from 'node:crypto';
import { sql, type Generated, type Kysely, type Migration } from 'kysely';
import type { DialectTraits } from './dialect.ts';

/**
 * Schema migrations, in order. Only portable column types and constraints, so the same migrations
 * run on SQLite and PostgreSQL; `dialect.ts` holds the differences (auto-increment keys).
 */
export function migrations(traits: DialectTraits): Record<string, Migration> {
  return {
    '0001_core': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('users')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('username', 'varchar(255)', (c) => c.notNull().unique())
          .addColumn('password_hash', 'varchar(255)', (c) => c.notNull())
          .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('credential_generation', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('repositories')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('repository_blobs')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'varchar(150)', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();
        await db.schema
          .createTable('manifests')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'varchar(150)', (c) => c.notNull())
          .addColumn('media_type', 'varchar(255)', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('artifact_type', 'varchar(255)')
          .addColumn('subject_digest', 'varchar(150)')
          .addColumn('annotations', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('manifests_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();
        await db.schema
          .createTable('manifest_references')
          .addColumn('repository_id', 'integer', (c) => c.notNull())
          .addColumn('manifest_digest', 'varchar(150)', (c) => c.notNull())
          .addColumn('child_digest', 'varchar(150)', (c) => c.notNull())
          .addColumn('kind', 'varchar(16)', (c) => c.notNull())
          .addPrimaryKeyConstraint('manifest_references_pk', ['repository_id', 'manifest_digest', 'child_digest'])
          .addForeignKeyConstraint('manifest_references_manifest', ['repository_id', 'manifest_digest'], 'manifests', ['repository_id', 'digest'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('manifest_references_child').on('manifest_references').column('child_digest').execute();
        await db.schema
          .createTable('tags')
          .addColumn('repository_id', 'integer', (c) => c.notNull())
          .addColumn('name', 'varchar(128)', (c) => c.notNull())
          .addColumn('manifest_digest', 'varchar(150)', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
          .addForeignKeyConstraint('tags_manifest', ['repository_id', 'manifest_digest'], 'manifests', ['repository_id', 'digest'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema
          .createTable('upload_sessions')
          .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('repository', 'varchar(255)', (c) => c.notNull())
          .addColumn('created_by', 'varchar(255)')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0002_upload_origin': {
      async up(db: Kysely<unknown>) {
        // How the request that opened a session arrived (JSON), to explain later requests that fail.
        await db.schema.alterTable('upload_sessions').addColumn('origin', 'text').execute();
      },
    },
    '0003_projects': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('projects')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
          .addColumn('public', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('quota_bytes', 'bigint')
          .addColumn('created_by', 'varchar(255)')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.alterTable('manifests').addColumn('pushed_by', 'varchar(255)').execute();
        await db.schema.alterTable('manifests').addColumn('last_pulled_at', 'bigint').execute();
        await db.schema.alterTable('repositories').addColumn('project_id', 'integer', (c) => c.references('projects.id').onDelete('cascade')).execute();
        await db.schema.createIndex('repositories_project').on('repositories').column('project_id').execute();
        await db.schema
          .createTable('project_members')
          .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id').onDelete('cascade'))
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('role', 'varchar(32)', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('project_members_pk', ['project_id', 'user_id'])
          .execute();
        await db.schema.createIndex('project_members_user').on('project_members').column('user_id').execute();
        await db.schema
          .createTable('project_blobs')
          .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id').onDelete('cascade'))
          .addColumn('digest', 'varchar(150)', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('project_blobs_pk', ['project_id', 'digest'])
          .execute();
        await db.schema
          .createTable('project_usage')
          .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id').onDelete('cascade'))
          .addColumn('shard', 'integer', (c) => c.notNull())
          .addColumn('bytes', 'bigint', (c) => c.notNull().defaultTo(0))
          .addPrimaryKeyConstraint('project_usage_pk', ['project_id', 'shard'])
          .execute();
        await db.schema
          .createTable('robots')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
          .addColumn('description', 'varchar(1024)', (c) => c.notNull().defaultTo(''))
          .addColumn('level', 'varchar(16)', (c) => c.notNull())
          .addColumn('secret_hash', 'varchar(128)', (c) => c.notNull())
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('expires_at', 'bigint')
          .addColumn('created_by', 'varchar(255)')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('robot_permissions')
          .addColumn('robot_id', 'integer', (c) => c.notNull().references('robots.id').onDelete('cascade'))
          .addColumn('project_id', 'integer', (c) => c.references('projects.id').onDelete('cascade'))
          .addColumn('actions', 'varchar(255)', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('robot_permissions_robot').on('robot_permissions').column('robot_id').execute();
        await db.schema
          .createTable('personal_tokens')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('name', 'varchar(255)', (c) => c.notNull())
          .addColumn('token_hash', 'varchar(128)', (c) => c.notNull().unique())
          .addColumn('prefix', 'varchar(32)', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_used_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('personal_tokens_user_name', ['user_id', 'name'])
          .execute();
        await db.schema
          .createTable('sessions')
          .addColumn('id_hash', 'varchar(128)', (c) => c.primaryKey())
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('audit_log')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('time', 'bigint', (c) => c.notNull())
          .addColumn('actor', 'varchar(255)', (c) => c.notNull())
          .addColumn('action', 'varchar(64)', (c) => c.notNull())
          .addColumn('resource_type', 'varchar(32)', (c) => c.notNull())
          .addColumn('resource', 'varchar(512)', (c) => c.notNull())
          .addColumn('project', 'varchar(255)')
          .addColumn('client', 'varchar(64)')
          .addColumn('success', 'integer', (c) => c.notNull())
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('audit_log_time').on('audit_log').column('time').execute();
        await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['actor', 'time']).execute();
        await db.schema.createIndex('audit_log_project').on('audit_log').columns(['project', 'time']).execute();
      },
    },
    '0004_credential_binding': {
      async up(db: Kysely<unknown>) {
        // A user identity that is never reused (SQLite may hand a deleted user's id to the next one),
        // so tokens and sessions of a deleted user never work for a new user of the same name.
        await db.schema.alterTable('users').addColumn('uid', 'varchar(64)').execute();
        const users = await (db as Kysely<{ users: { id: number; uid: string | null } }>).selectFrom('users').select('id').execute();
        for (const user of users) {
          await (db as Kysely<{ users: { id: number; uid: string | null } }>).updateTable('users').set({ uid: randomUUID() }).where('id', '=', user.id).execute();
        }
        await db.schema.createIndex('users_uid').on('users').column('uid').unique().execute();
        // The credential a session was opened with ('pw:<generation>' or 'pat:<id>'); it ends with it.
        // Sessions from before this column have none and are no longer accepted (their users log in again).
        await db.schema.alterTable('sessions').addColumn('credential', 'varchar(64)').execute();
        await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
      },
    },
    '0005_library_and_usage': {
      async up(untyped: Kysely<unknown>) {
        const db = untyped as Kysely<V5>;
        // Deleting an artifact looks up, per digest, whether another manifest of the project has it.
        await db.schema.createIndex('manifests_digest').on('manifests').column('digest').execute();

        // Single-segment repositories (`alpine`) now belong to the project `library`, created here if
        // needed, as on first use (private, no quota). Projects once created for them stay as they are.
        const single = await db.selectFrom('repositories').select('id').where('name', 'not like', '%/%').limit(1).executeTakeFirst();
        if (single) {
          const libraryId = await projectId(db, 'library');
          await db.updateTable('repositories').set({ project_id: libraryId }).where('name', 'not like', '%/%').execute();
        }
        // Repositories older than projects (still without one) get theirs now, so they are counted below.
        const orphans = await db.selectFrom('repositories').select(['id', 'name']).where('project_id', 'is', null).execute();
        for (const orphan of orphans) {
          const id = await projectId(db, orphan.name.slice(0, orphan.name.indexOf('/')));
          await db.updateTable('repositories').set({ project_id: id }).where('id', '=', orphan.id).execute();
        }

        // Accounting recomputed from what artifacts reference — each manifest of a project's
        // repositories and each linked blob one of them lists, once per project — which moves the
        // moved repositories' usage to `library` and drops what deletions used to leave counted.
        await db.deleteFrom('project_blobs').execute();
        await db.deleteFrom('project_usage').execute();
        await db
          .insertInto('project_blobs')
          .columns(['project_id', 'digest', 'size'])
          .expression(
            db
              .selectFrom('manifests as m')
              .innerJoin('repositories as r', 'r.id', 'm.repository_id')
              .select(['r.project_id', 'm.digest', (eb) => eb.fn.max('m.size').as('size')])
              .where('r.project_id', 'is not', null)
              .groupBy(['r.project_id', 'm.digest']),
          )
          .execute();
        await db
          .insertInto('project_blobs')
          .columns(['project_id', 'digest', 'size'])
          .expression(
            db
              .selectFrom('repository_blobs as rb')
              .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
              .select(['r.project_id', 'rb.digest', (eb) => eb.fn.max('rb.size').as('size')])
              .where('r.project_id', 'is not', null)
              .where((eb) =>
                eb.exists(
                  eb.selectFrom('manifest_references as mr')
                    .select('mr.child_digest')
                    .whereRef('mr.repository_id', '=', 'rb.repository_id')
                    .whereRef('mr.child_digest', '=', 'rb.digest')
                    .where('mr.kind', '=', 'blob'),
                ),
              )
              .where((eb) =>
                eb.not(eb.exists(eb.selectFrom('project_blobs as pb').select('pb.digest').whereRef('pb.project_id', '=', 'r.project_id').whereRef('pb.digest', '=', 'rb.digest'))),
              )
              .groupBy(['r.project_id', 'rb.digest']),
          )
          .execute();
        await db
          .insertInto('project_usage')
          .columns(['project_id', 'shard', 'bytes'])
          .expression(db.selectFrom('project_blobs').select(['project_id', sql<number>`0`.as('shard'), (eb) => eb.fn.sum<number>('size').as('bytes')]).groupBy('project_id'))
          .execute();
      },
    },
    '0006_signing_keys': {
      async up(db: Kysely<unknown>) {
        // The token signing key replicas on PostgreSQL share (src/auth/keys.ts); SQLite keeps its file.
        await db.schema
          .createTable('signing_keys')
          .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('pem', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0007_jobs_events': {
      async up(db: Kysely<unknown>) {
        // The durable job queue (src/jobs/): claimed with a lease, retried with backoff, cancellable.
        await db.schema
          .createTable('jobs')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('kind', 'varchar(64)', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('state', 'varchar(16)', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('max_attempts', 'integer', (c) => c.notNull())
          .addColumn('run_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_owner', 'varchar(160)')
          .addColumn('lease_until', 'bigint')
          .addColumn('progress', 'text')
          .addColumn('error', 'text')
          .addColumn('dedupe_key', 'varchar(255)', (c) => c.unique())
          .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('started_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .execute();
        await db.schema.createIndex('jobs_due').on('jobs').columns(['state', 'run_at']).execute();
        await db.schema.createIndex('jobs_kind').on('jobs').columns(['kind', 'id']).execute();
        await db.schema
          .createTable('job_logs')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('job_id', 'integer', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
          .addColumn('time', 'bigint', (c) => c.notNull())
          .addColumn('level', 'varchar(8)', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('job_logs_job').on('job_logs').columns(['job_id', 'id']).execute();
        await db.schema
          .createTable('schedules')
          .addColumn('name', 'varchar(128)', (c) => c.primaryKey())
          .addColumn('kind', 'varchar(64)', (c) => c.notNull())
          .addColumn('cron', 'varchar(128)', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('next_run_at', 'bigint')
          .addColumn('last_run_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        // The event outbox (src/metadata/events.ts), written in the transaction of the change.
        await db.schema
          .createTable('events')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('time', 'bigint', (c) => c.notNull())
          .addColumn('type', 'varchar(64)', (c) => c.notNull())
          .addColumn('repository', 'varchar(255)')
          .addColumn('project', 'varchar(255)')
          .addColumn('digest', 'varchar(150)')
          .addColumn('tag', 'varchar(128)')
          .addColumn('actor', 'varchar(255)')
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('events_time').on('events').column('time').execute();
        await db.schema
          .createTable('event_cursors')
          .addColumn('consumer', 'varchar(128)', (c) => c.primaryKey())
          .addColumn('last_id', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0008_upload_state': {
      async up(db: Kysely<unknown>) {
        // Any replica continues an upload: the running SHA-256 of its first hash_offset bytes is
        // saved with the session, and a request writing to it holds a lease (owner, expiry in ms).
        // One column per statement: SQLite adds one at a time.
        await db.schema.alterTable('upload_sessions').addColumn('hash_state', 'text').execute();
        await db.schema.alterTable('upload_sessions').addColumn('hash_offset', 'bigint').execute();
        await db.schema.alterTable('upload_sessions').addColumn('lease_owner', 'varchar(64)').execute();
        await db.schema.alterTable('upload_sessions').addColumn('lease_until', 'bigint').execute();
      },
    },
    '0009_tags_version': {
      async up(db: Kysely<unknown>) {
        // Bumped in the transaction of every change to a repository's tags: a replica's cached tags
        // list is current while the number it was built at is still the repository's.
        await db.schema.alterTable('repositories').addColumn('tags_version', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      },
    },
    '0010_lifecycle': {
      async up(db: Kysely<unknown>) {
        // Every content object storage holds that the metadata knows: garbage collection sweeps
        // from here, and every push locks the rows of what it references (src/metadata/blobs.ts).
        await db.schema
          .createTable('blobs')
          .addColumn('digest', 'varchar(150)', (c) => c.primaryKey())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('touched_at', 'bigint', (c) => c.notNull())
          .addColumn('deleting', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        // What was touched within the grace period (the figures of what a run must leave for later).
        await db.schema.createIndex('blobs_touched').on('blobs').column('touched_at').execute();
        const now = Date.now();
        await sql`insert into blobs (digest, size, touched_at, deleting)
          select digest, max(size), ${now}, 0 from (
            select digest, size from repository_blobs
            union all select digest, size from manifests
            union all select digest, size from project_blobs
          ) as known group by digest`.execute(db);
        // The tags of a manifest: every deletion and garbage collection's untagged check look them up.
        await db.schema.createIndex('tags_manifest').on('tags').columns(['repository_id', 'manifest_digest']).execute();
        // Jobs that must not run twice at once (one GC, one retention run per project): unique
        // while the job is queued or running, cleared when it ends.
        await db.schema.alterTable('jobs').addColumn('exclusive_key', 'varchar(255)').execute();
        await db.schema.createIndex('jobs_exclusive').on('jobs').column('exclusive_key').unique().execute();
        // What a job decided or did, item by item (retention: each artifact kept or deleted and why).
        await db.schema
          .createTable('job_items')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('job_id', 'integer', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
          .addColumn('subject', 'varchar(600)', (c) => c.notNull())
          .addColumn('outcome', 'varchar(32)', (c) => c.notNull())
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('job_items_job').on('job_items').columns(['job_id', 'id']).execute();
        await db.schema
          .createTable('retention_policies')
          .addColumn('project_id', 'integer', (c) => c.primaryKey().references('projects.id').onDelete('cascade'))
          .addColumn('rules', 'text', (c) => c.notNull())
          .addColumn('cron', 'varchar(128)')
          .addColumn('updated_by', 'varchar(255)')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('immutability_rules')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id').onDelete('cascade'))
          .addColumn('repository_pattern', 'varchar(255)', (c) => c.notNull())
          .addColumn('repository_exclude', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('tag_pattern', 'varchar(255)', (c) => c.notNull())
          .addColumn('tag_exclude', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_by', 'varchar(255)')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('immutability_rules_project').on('immutability_rules').column('project_id').execute();
      },
    },
    '0011_proxy_cache': {
      async up(db: Kysely<unknown>) {
        // Other registries Berth talks to (proxy cache upstreams, replication peers). `credential`
        // is sealed (src/auth/sealed.ts): never stored, returned or logged in the clear.
        await db.schema
          .createTable('registries')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('type', 'varchar(32)', (c) => c.notNull())
          .addColumn('url', 'varchar(2048)', (c) => c.notNull())
          .addColumn('username', 'varchar(255)')
          .addColumn('credential', 'text')
          .addColumn('ca_file', 'varchar(1024)')
          .addColumn('insecure', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('description', 'varchar(1024)')
          .addColumn('created_by', 'varchar(255)')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        // A proxy-cache project pulls what it lacks from this registry; null: an ordinary project.
        await db.schema.alterTable('projects').addColumn('proxy_registry_id', 'integer', (c) => c.references('registries.id')).execute();
        // Seconds a cached tag is served without asking the upstream again; null: `proxy.freshness`.
        await db.schema.alterTable('projects').addColumn('proxy_freshness', 'integer').execute();
        // When each cached tag was last confirmed with the upstream, and the digest it had then.
        await db.schema
          .createTable('proxy_tags')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('tag', 'varchar(128)', (c) => c.notNull())
          .addColumn('digest', 'varchar(150)', (c) => c.notNull())
          .addColumn('checked_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('proxy_tags_pk', ['repository_id', 'tag'])
          .execute();
        // Short leases shared by replicas: one upstream fetch of a missing blob or manifest at a time.
        await db.schema
          .createTable('leases')
          .addColumn('key', 'varchar(600)', (c) => c.primaryKey())
          .addColumn('owner', 'varchar(128)', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0012_replication_webhooks': {
      async up(db: Kysely<unknown>) {
        // Replication rules (src/replication/): what to copy between Berth and another registry,
        // when. `filters` and `destination` are JSON the rule schema validates. Executions are jobs
        // of kind `replication` and their tasks job items.
        await db.schema
          .createTable('replication_rules')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('description', 'varchar(1024)')
          .addColumn('registry_id', 'integer', (c) => c.notNull().references('registries.id'))
          .addColumn('direction', 'varchar(8)', (c) => c.notNull())
          .addColumn('filters', 'text', (c) => c.notNull())
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('trigger', 'varchar(16)', (c) => c.notNull())
          .addColumn('cron', 'varchar(128)')
          .addColumn('replicate_deletes', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('override', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('bandwidth', 'bigint')
          .addColumn('concurrency', 'integer', (c) => c.notNull())
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_by', 'varchar(255)')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_by', 'varchar(255)')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        // What event-triggered executions still have to replicate: the outbox consumer adds a mark
        // per pushed or deleted artifact, the rule's execution takes them (coalescing bursts).
        await db.schema
          .createTable('replication_marks')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('rule_id', 'integer', (c) => c.notNull().references('replication_rules.id').onDelete('cascade'))
          .addColumn('repository', 'varchar(255)', (c) => c.notNull())
          .addColumn('tag', 'varchar(128)')
          .addColumn('digest', 'varchar(150)')
          .addColumn('action', 'varchar(8)', (c) => c.notNull())
          .addColumn('event_id', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('replication_marks_rule').on('replication_marks').columns(['rule_id', 'id']).execute();
        // Webhook policies of a project. `auth_header` and `secret` are sealed (src/auth/sealed.ts).
        await db.schema
          .createTable('webhooks')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id').onDelete('cascade'))
          .addColumn('name', 'varchar(64)', (c) => c.notNull())
          .addColumn('description', 'varchar(1024)')
          .addColumn('url', 'varchar(2048)', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('format', 'varchar(16)', (c) => c.notNull())
          .addColumn('auth_header', 'text')
          .addColumn('secret', 'text')
          .addColumn('ca_file', 'varchar(1024)')
          .addColumn('insecure', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_by', 'varchar(255)')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('webhooks_project_name', ['project_id', 'name'])
          .execute();
        // Each event (or test event) a webhook is to receive, with the body as rendered when it was
        // queued and how its delivery went. Unique per (webhook, event): an event read twice from
        // the outbox is queued once.
        await db.schema
          .createTable('webhook_deliveries')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('webhook_id', 'integer', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
          .addColumn('event_id', 'bigint')
          .addColumn('event_type', 'varchar(64)', (c) => c.notNull())
          .addColumn('message_id', 'varchar(64)', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('state', 'varchar(16)', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('status_code', 'integer')
          .addColumn('response', 'text')
          .addColumn('error', 'varchar(1024)')
          .addColumn('duration_ms', 'integer')
          .addColumn('next_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('delivered_at', 'bigint')
          .addUniqueConstraint('webhook_deliveries_event', ['webhook_id', 'event_id'])
          .execute();
        await db.schema.createIndex('webhook_deliveries_webhook').on('webhook_deliveries').columns(['webhook_id', 'id']).execute();
        await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['state', 'next_at']).execute();
      },
    },
    '0013_identity': {
      async up(db: Kysely<unknown>) {
        // Where a user's account lives (src/auth/external.ts): `local` (password in Berth), `ldap`
        // or `oidc`; `external_id` ties the row to the person at that source (DN, issuer + sub).
        await db.schema.alterTable('users').addColumn('source', 'varchar(16)', (c) => c.notNull().defaultTo('local')).execute();
        await db.schema.alterTable('users').addColumn('external_id', 'varchar(1024)').execute();
        await db.schema.alterTable('users').addColumn('email', 'varchar(255)').execute();
        await db.schema.alterTable('users').addColumn('last_login_at', 'bigint').execute();
        // When the user's groups were last read from the source (sign-in, or an LDAP re-check).
        await db.schema.alterTable('users').addColumn('groups_synced_at', 'bigint').execute();
        // OIDC: the provider's refresh token (sealed), to ask the provider now and then whether the
        // person is still accepted, while they use personal access tokens.
        await db.schema.alterTable('users').addColumn('external_refresh', 'text').execute();
        // Groups of an identity source, known once a member signed in or an administrator named one.
        await db.schema
          .createTable('groups')
          .addColumn('id', traits.idType, (c) => c.primaryKey())
          .addColumn('source', 'varchar(16)', (c) => c.notNull())
          .addColumn('name', 'varchar(255)', (c) => c.notNull())
          .addColumn('external_id', 'varchar(1024)', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('groups_source_external', ['source', 'external_id'])
          .execute();
        await db.schema.createIndex('groups_name').on('groups').column('name').execute();
        // Who is in which group, as the source said at the member's last sign-in or re-check.
        await db.schema
          .createTable('group_memberships')
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('group_id', 'integer', (c) => c.notNull().references('groups.id').onDelete('cascade'))
          .addPrimaryKeyConstraint('group_memberships_pk', ['user_id', 'group_id'])
          .execute();
        await db.schema.createIndex('group_memberships_group').on('group_memberships').column('group_id').execute();
        // Groups as project members: each member of the group has the role (with their own, the union).
        await db.schema
          .createTable('project_group_members')
          .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id').onDelete('cascade'))
          .addColumn('group_id', 'integer', (c) => c.notNull().references('groups.id').onDelete('cascade'))
          .addColumn('role', 'varchar(32)', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('project_group_members_pk', ['project_id', 'group_id'])
          .execute();
        await db.schema.createIndex('project_group_members_group').on('project_group_members').column('group_id').execute();
        // Sign-ins through an OpenID provider in progress (browser, CLI and device flows): what the
        // callback or the next poll needs, under a hash of the flow's id. Any replica may finish
        // a flow another began. Rows live minutes; expired ones are removed by housekeeping.
        await db.schema
          .createTable('auth_flows')
          .addColumn('id_hash', 'varchar(128)', (c) => c.primaryKey())
          .addColumn('kind', 'varchar(16)', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('user_id', 'integer', (c) => c.references('users.id').onDelete('cascade'))
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('auth_flows_expiry').on('auth_flows').column('expires_at').execute();
      },
    },
    '0014_settings': {
      async up(db: Kysely<unknown>) {
        // Run-time system settings an administrator changed (src/metadata/settings.ts): a key's
        // row overrides the configuration file's value until it is reset. Values are JSON.
        await db.schema
          .createTable('settings')
          .addColumn('key', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('updated_by', 'varchar(255)')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0015_portal_lists': {
      async up(db: Kysely<unknown>) {
        // The portal's artifact list (ArtifactStore.artifacts) in its orders: a page is read along
        // the index and stops after it, instead of sorting a repository's 100,000 artifacts.
        await db.schema.createIndex('manifests_pushed').on('manifests').columns(['repository_id', 'created_at', 'digest']).execute();
        await db.schema.createIndex('manifests_pulled').on('manifests').columns(['repository_id', 'last_pulled_at', 'digest']).execute();
        // An artifact's first tags by name, and its first tag for the tag order, without sorting
        // all its tags; it serves every lookup tags_manifest served, which it replaces.
        await db.schema.createIndex('tags_manifest_name').on('tags').columns(['repository_id', 'manifest_digest', 'name']).execute();
        await db.schema.dropIndex('tags_manifest').execute();
        // Whether a manifest is an index's child in its repository (a list's top-level test, per row).
        await db.schema.createIndex('manifest_references_child_repo').on('manifest_references').columns(['repository_id', 'child_digest']).execute();
        // A project's repositories by name or creation time (a project may hold 10,000).
        await db.schema.createIndex('repositories_project_name').on('repositories').columns(['project_id', 'name']).execute();
        await db.schema.createIndex('repositories_project_created').on('repositories').columns(['project_id', 'created_at']).execute();
      },
    },
  };
}

/** The tables migration 0005 reads and writes, as they were then. */
interface V5 {
  projects: { id: Generated<number>; name: string; public: number; quota_bytes: number | null; created_by: string | null; created_at: number };
  repositories: { id: number; name: string; project_id: number | null };
  repository_blobs: { repository_id: number; digest: string; size: number };
  manifests: { repository_id: number; digest: string; size: number };
  manifest_references: { repository_id: number; manifest_digest: string; child_digest: string; kind: string };
  project_blobs: { project_id: number | null; digest: string; size: number };
  project_usage: { project_id: number | null; shard: number; bytes: number };
}

/** The id of project `name`, created (private, no quota) when missing. */
async function projectId(db: Kysely<V5>, name: string): Promise<number> {
  await db
    .insertInto('projects')
    .values({ name, public: 0, quota_bytes: null, created_by: null, created_at: Date.now() })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  return (await db.selectFrom('projects').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id;
}
