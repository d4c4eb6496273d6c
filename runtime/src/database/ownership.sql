-- PostgreSQL's own functions and operators must come first in the search path: a path that
-- lists pg_catalog after another schema lets that schema's objects stand in for them, in the
-- checks below and in every statement after them. Only qualified names here.
DO $$
BEGIN
    IF (SELECT u.s OPERATOR(pg_catalog.<>) 'pg_catalog'::name
        FROM pg_catalog.unnest(pg_catalog.current_schemas(true)) WITH ORDINALITY AS u(s, i)
        WHERE NOT pg_catalog.starts_with(u.s::text, 'pg_temp')
        ORDER BY u.i LIMIT 1) THEN
        RAISE EXCEPTION 'refusing to create the key table: the search_path lists pg_catalog after another schema; leave pg_catalog out of it, or put it first';
    END IF;
END
$$;

-- Nothing of the schema may belong to another role, or carry a trigger or rule of another's:
-- the functions run with their owner's rights, and a table or function made beforehand by
-- another role (CREATE TABLE IF NOT EXISTS keeps a table, CREATE OR REPLACE FUNCTION keeps a
-- function's owner) would run that role's code as the owner, a superuser included. Checked
-- before anything is written, and again at the end.
DO $$
DECLARE
    schema_name text := pg_catalog.current_schema();
    relation text;
    routine text;
    found record;
    id oid;
    me oid := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
    database_owner oid := pg_catalog.to_regrole('pg_database_owner');
    owns_database boolean := (SELECT d.datdba = me FROM pg_catalog.pg_database d
        WHERE d.datname = pg_catalog.current_database());
BEGIN
    -- Only this role may create objects in the schemas that names resolve in, or another
    -- could plant a function or operator that the statements below, or the trigger
    -- functions, would call with this role's rights (PostgreSQL 14 and older let every
    -- role create in `public`).
    IF schema_name IS NULL THEN
        RAISE EXCEPTION 'refusing to create the key table: no schema of the search_path exists';
    END IF;
    FOR found IN
        SELECT n.nspname, n.nspowner AS who FROM pg_catalog.pg_namespace n
            WHERE n.nspname = ANY (pg_catalog.current_schemas(false))
        UNION ALL
        SELECT n.nspname, a.grantee FROM pg_catalog.pg_namespace n,
            pg_catalog.aclexplode(n.nspacl) a
            WHERE n.nspname = ANY (pg_catalog.current_schemas(false))
            AND a.privilege_type = 'CREATE'::text
    LOOP
        IF NOT (found.who = me OR (found.who = database_owner AND owns_database)) THEN
            RAISE EXCEPTION 'refusing to create the key table: in schema %, role % may create objects, which this role''s statements could then run; use a schema only % can create in (CREATE SCHEMA keys AUTHORIZATION %; and search_path=keys in the URL''s options), or REVOKE CREATE ON SCHEMA % FROM %',
                found.nspname,
                CASE WHEN found.who = 0::oid THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(found.who)::text END,
                current_user, current_user, found.nspname,
                CASE WHEN found.who = 0::oid THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(found.who)::text END;
        END IF;
    END LOOP;
    -- Nor may another role create schemas in the database: one named in the search path that
    -- does not exist yet (`"$user"`) would take the tables' and functions' names from then on.
    FOR found IN
        SELECT a.grantee AS who FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a
            WHERE d.datname = pg_catalog.current_database() AND a.privilege_type = 'CREATE'::text
    LOOP
        IF found.who <> me THEN
            RAISE EXCEPTION 'refusing to create the key table: in database %, role % may create schemas, and one named in a search_path (such as "$user") would take the table''s names; REVOKE CREATE ON DATABASE % FROM %',
                pg_catalog.current_database(),
                CASE WHEN found.who = 0::oid THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(found.who)::text END,
                pg_catalog.current_database(),
                CASE WHEN found.who = 0::oid THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(found.who)::text END;
        END IF;
    END LOOP;
    FOREACH relation IN ARRAY
        ARRAY['api_keys', 'api_keys_revision', 'api_keys_deleted', 'api_keys_last_used']
    LOOP
        id := pg_catalog.to_regclass(pg_catalog.format('%I.%I', schema_name, relation));
        CONTINUE WHEN id IS NULL;
        SELECT c.relkind, pg_catalog.pg_get_userbyid(c.relowner) AS owner,
            (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid
                AND NOT t.tgisinternal
                AND NOT (relation = 'api_keys'
                    AND t.tgname IN ('api_keys_changed', 'api_keys_truncated'))) AS triggers,
            (SELECT count(*) FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid) AS rules
        INTO found FROM pg_catalog.pg_class c WHERE c.oid = id;
        IF found.relkind <> 'r' OR found.owner <> current_user
            OR found.triggers > 0 OR found.rules > 0 THEN
            RAISE EXCEPTION 'refusing to use %.%: it must be an ordinary table owned by %, with no trigger or rule of another''s', schema_name, relation, current_user;
        END IF;
    END LOOP;
    FOREACH routine IN ARRAY
        ARRAY['api_keys_next_revision(text)', 'api_keys_changed()', 'api_keys_truncated()']
    LOOP
        id := pg_catalog.to_regprocedure(pg_catalog.format('%I.%s', schema_name, routine));
        CONTINUE WHEN id IS NULL;
        IF (SELECT pg_catalog.pg_get_userbyid(p.proowner) FROM pg_catalog.pg_proc p
            WHERE p.oid = id) <> current_user THEN
            RAISE EXCEPTION 'refusing to use %.%: it must be owned by %', schema_name, routine, current_user;
        END IF;
    END LOOP;
END
$$;
