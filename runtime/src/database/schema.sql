CREATE TABLE IF NOT EXISTS api_keys (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    digest      bytea NOT NULL UNIQUE CHECK (pg_catalog.octet_length(digest) = 32),
    scopes      text[] NOT NULL DEFAULT '{}'
                CHECK (pg_catalog.array_position(scopes, NULL) IS NULL
                    AND coalesce(pg_catalog.array_ndims(scopes), 1) = 1),
    expires_at  timestamptz CHECK (pg_catalog.isfinite(expires_at)),
    ips         text[] NOT NULL DEFAULT '{}'
                CHECK (pg_catalog.array_position(ips, NULL) IS NULL
                    AND coalesce(pg_catalog.array_ndims(ips), 1) = 1),
    rate        text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    revoked_at  timestamptz CHECK (pg_catalog.isfinite(revoked_at)),
    revision    bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS api_keys_revision_idx ON api_keys (revision);

-- One row: the revision of the last change. Writers take its row lock in turn, so revisions
-- are given in commit order and a reader that sees revision N sees every change up to N;
-- the changes of one transaction share its revision.
CREATE TABLE IF NOT EXISTS api_keys_revision (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    revision bigint NOT NULL,
    -- The transaction that took `revision`: every row it writes shares it.
    txid bigint NOT NULL DEFAULT 0
);
-- The counter's identity, random, made with its row. Instances read it with the table's
-- OID beside every revision: a table dropped and created again, restored from a dump or
-- reset by hand has another, and its revisions are not compared with the old ones'.
ALTER TABLE api_keys_revision
    ADD COLUMN IF NOT EXISTS epoch text NOT NULL DEFAULT pg_catalog.gen_random_uuid()::text;
INSERT INTO api_keys_revision (revision) VALUES (0) ON CONFLICT DO NOTHING;

-- Names deleted (or renamed away), so that instances reading changes see deletions too.
CREATE TABLE IF NOT EXISTS api_keys_deleted (
    revision bigint NOT NULL,
    name     text NOT NULL,
    PRIMARY KEY (revision, name)
);

-- Written in batches by each instance; kept apart so that it never moves the revision.
CREATE TABLE IF NOT EXISTS api_keys_last_used (
    name         text PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);

-- Numbers a change, records a deletion (`*` for every name: TRUNCATE) and announces it.
-- The functions run with their owner's rights (SECURITY DEFINER), so that a role allowed to
-- write keys needs no right on the counter, the deletions or the last-used times; their
-- search_path is pinned below to this schema, then pg_temp, so that no writer's objects
-- stand in for the schema's. No one else may call this one directly.
CREATE OR REPLACE FUNCTION api_keys_next_revision(deleted text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    latest bigint;
    taken_by bigint;
BEGIN
    -- One revision per transaction, taken at its first change: a bulk write updates the
    -- counter and notifies once, not once a row. The row lock is held to the commit.
    SELECT revision, txid INTO latest, taken_by FROM api_keys_revision FOR UPDATE;
    IF taken_by IS DISTINCT FROM pg_catalog.txid_current() THEN
        UPDATE api_keys_revision SET revision = revision + 1, txid = pg_catalog.txid_current()
            RETURNING revision INTO latest;
    END IF;
    IF deleted = '*' THEN
        DELETE FROM api_keys_last_used;
    ELSIF deleted IS NOT NULL THEN
        DELETE FROM api_keys_last_used WHERE name = deleted;
    END IF;
    IF deleted IS NOT NULL THEN
        INSERT INTO api_keys_deleted (revision, name) VALUES (latest, deleted)
            ON CONFLICT DO NOTHING;
    END IF;
    PERFORM pg_catalog.pg_notify('api_keys', latest::text);
    RETURN latest;
END
$$;

CREATE OR REPLACE FUNCTION api_keys_changed() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER AS $$
BEGIN
    -- Only for the key table: a trigger that another role puts on a table of its own must
    -- not number, delete or hold the counter with the owner's rights.
    IF TG_RELID OPERATOR(pg_catalog.<>) 'api_keys'::regclass::oid THEN
        RAISE EXCEPTION 'api_keys_changed() is the trigger of api_keys only';
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM api_keys_next_revision(OLD.name);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.name <> OLD.name THEN
        NEW.revision := api_keys_next_revision(OLD.name);
    ELSE
        NEW.revision := api_keys_next_revision(NULL);
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS api_keys_changed ON api_keys;
CREATE TRIGGER api_keys_changed BEFORE INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_changed();

-- TRUNCATE fires no row trigger: it is recorded as the deletion of every name, which makes
-- instances drop the table's keys.
CREATE OR REPLACE FUNCTION api_keys_truncated() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER AS $$
BEGIN
    IF TG_RELID OPERATOR(pg_catalog.<>) 'api_keys'::regclass::oid THEN
        RAISE EXCEPTION 'api_keys_truncated() is the trigger of api_keys only';
    END IF;
    PERFORM api_keys_next_revision('*');
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS api_keys_truncated ON api_keys;
CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys_truncated();

-- Fired for replicated and restored writes too (session_replication_role = replica).
ALTER TABLE api_keys ENABLE ALWAYS TRIGGER api_keys_changed;
ALTER TABLE api_keys ENABLE ALWAYS TRIGGER api_keys_truncated;

DO $$
DECLARE
    pinned text := pg_catalog.format('%I, pg_temp', pg_catalog.current_schema());
BEGIN
    EXECUTE pg_catalog.format('ALTER FUNCTION api_keys_next_revision(text) SET search_path = %s', pinned);
    EXECUTE pg_catalog.format('ALTER FUNCTION api_keys_changed() SET search_path = %s', pinned);
    EXECUTE pg_catalog.format('ALTER FUNCTION api_keys_truncated() SET search_path = %s', pinned);
END
$$;
REVOKE ALL ON FUNCTION api_keys_next_revision(text), api_keys_changed(), api_keys_truncated()
    FROM PUBLIC;
