-- Refresh tokens: found by their stored hash (now the primary key), revoked by family.
-- The `id` column and the index by user are gone: a user's refresh tokens are found
-- through the families of the user's token records.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_pkey;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_token_hash_key;
ALTER TABLE refresh_tokens DROP COLUMN id;
ALTER TABLE refresh_tokens ADD PRIMARY KEY (token_hash);
DROP INDEX refresh_user;

-- Tokens of developer apps are looked up by app; API-key and console tokens have no
-- app, so they need no entry in this index.
DROP INDEX tokens_app;
CREATE INDEX tokens_app ON tokens (app_id, user_id) WHERE app_id IS NOT NULL;

-- A batch of grants is one statement: a multi-row INSERT into this view. Its trigger
-- re-checks what each grant relied on (the API key still exists, is unexpired and
-- unchanged, its owner active and unchanged) and writes the token record and refresh
-- token; if a check fails it aborts the whole statement (nothing is written) with
-- 'keyward: stale key', and the service decides that batch grant by grant. One
-- statement is one round trip and, on its own, one atomic transaction.
--
-- (On SQLite the same view appends to a token journal that is moved into the tables
-- in bulk: its single writer pays for every b-tree page a commit touches. PostgreSQL
-- commits concurrently and writes the tables directly.)
CREATE VIEW grant_rows AS
SELECT t.jti, t.domain_id, t.user_id, t.key_id, t.app_id, t.client_id, t.kid, t.scopes,
       t.source, t.family_id, t.issued_at, t.expires_at,
       NULL::TEXT AS refresh_hash, NULL::BIGINT AS refresh_expires_at,
       NULL::BIGINT AS key_version, NULL::BIGINT AS user_version
FROM tokens t WHERE FALSE;

CREATE FUNCTION grant_rows_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key_version IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id
        WHERE k.id = NEW.key_id AND k.version = NEW.key_version
          AND u.version = NEW.user_version AND u.status = 'active'
          AND (k.expires_at IS NULL OR k.expires_at > NEW.issued_at)) THEN
        RAISE EXCEPTION 'keyward: stale key';
    END IF;
    INSERT INTO tokens (jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes,
                        source, family_id, issued_at, expires_at)
    VALUES (NEW.jti, NEW.domain_id, NEW.user_id, NEW.key_id, NEW.app_id, NEW.client_id,
            NEW.kid, NEW.scopes, NEW.source, NEW.family_id, NEW.issued_at, NEW.expires_at);
    IF NEW.refresh_hash IS NOT NULL THEN
        INSERT INTO refresh_tokens (token_hash, family_id, domain_id, user_id, key_id,
                                    app_id, client_id, scopes, issued_at, expires_at)
        VALUES (NEW.refresh_hash, NEW.family_id, NEW.domain_id, NEW.user_id, NEW.key_id,
                NEW.app_id, NEW.client_id, NEW.scopes, NEW.issued_at,
                NEW.refresh_expires_at);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER grant_rows_insert INSTEAD OF INSERT ON grant_rows
    FOR EACH ROW EXECUTE FUNCTION grant_rows_insert();
