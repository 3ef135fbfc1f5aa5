-- Refresh tokens: found by their stored hash (unique), revoked by family. The `id`
-- column and the index by user are gone: a user's refresh tokens are found through the
-- families of the user's token records. Three b-trees to write per refresh token
-- instead of five.
CREATE TABLE refresh_tokens_new (
    token_hash  TEXT NOT NULL UNIQUE,
    family_id   TEXT NOT NULL,
    domain_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    key_id      TEXT,
    app_id      TEXT,
    client_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
INSERT INTO refresh_tokens_new (token_hash, family_id, domain_id, user_id, key_id, app_id,
                                client_id, scopes, issued_at, expires_at, used_at, revoked_at)
SELECT token_hash, family_id, domain_id, user_id, key_id, app_id, client_id, scopes,
       issued_at, expires_at, used_at, revoked_at
FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_family ON refresh_tokens (family_id);

-- Tokens of developer apps are looked up by app; API-key and console tokens have no
-- app, so they need no entry in this index.
DROP INDEX tokens_app;
CREATE INDEX tokens_app ON tokens (app_id, user_id) WHERE app_id IS NOT NULL;

-- The token journal. The token service records the grants of each group commit here
-- first: one append-only table, one row per grant (its token record and its refresh
-- token). A commit that adds a dozen rows to `tokens` and `refresh_tokens` rewrites a
-- leaf (and often splits it) in each of their ten b-trees; here it writes one or two
-- pages. The journal is then moved into `tokens` and `refresh_tokens` in bulk
-- ("settled") by the service every few thousand grants or fraction of a second, and
-- by every write transaction before it starts, so whatever changes tokens sees every
-- issued token. Reads that list tokens settle it first; looking a token up by jti
-- also looks here.
CREATE TABLE token_journal (
    seq                INTEGER PRIMARY KEY,
    jti                TEXT NOT NULL,
    domain_id          TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    key_id             TEXT,
    app_id             TEXT,
    client_id          TEXT NOT NULL,
    kid                TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    source             TEXT NOT NULL,
    family_id          TEXT,
    issued_at          BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    refresh_hash       TEXT,
    refresh_expires_at BIGINT
);

-- A batch of grants is one statement: a multi-row INSERT into this view. Its trigger
-- re-checks what each grant relied on (the API key still exists, is unexpired and
-- unchanged, its owner active and unchanged) and appends the grant to the journal; if
-- a check fails it aborts the whole statement (nothing is written) with
-- 'keyward: stale key', and the service decides that batch grant by grant. One
-- statement is one trip to the database and, on its own, one atomic transaction.
CREATE VIEW grant_rows AS
SELECT jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id,
       issued_at, expires_at, refresh_hash, refresh_expires_at,
       NULL AS key_version, NULL AS user_version
FROM token_journal WHERE 0;

CREATE TRIGGER grant_rows_insert INSTEAD OF INSERT ON grant_rows
BEGIN
    SELECT RAISE(ABORT, 'keyward: stale key')
    WHERE NEW.key_version IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id
        WHERE k.id = NEW.key_id AND k.version = NEW.key_version
          AND u.version = NEW.user_version AND u.status = 'active'
          AND (k.expires_at IS NULL OR k.expires_at > NEW.issued_at));
    INSERT INTO token_journal (jti, domain_id, user_id, key_id, app_id, client_id, kid,
                               scopes, source, family_id, issued_at, expires_at,
                               refresh_hash, refresh_expires_at)
    VALUES (NEW.jti, NEW.domain_id, NEW.user_id, NEW.key_id, NEW.app_id, NEW.client_id,
            NEW.kid, NEW.scopes, NEW.source, NEW.family_id, NEW.issued_at, NEW.expires_at,
            NEW.refresh_hash, NEW.refresh_expires_at);
END;
