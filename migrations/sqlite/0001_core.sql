-- Keyward schema, SQLite flavour. Ids are UUID text; timestamps are unix seconds (UTC).
-- Same tables, columns and meaning as migrations/postgres/0001_core.sql.

CREATE TABLE domains (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE scopes (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    builtin     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE scope_implies (
    scope_id    TEXT NOT NULL REFERENCES scopes(id) ON DELETE CASCADE,
    implied_id  TEXT NOT NULL REFERENCES scopes(id) ON DELETE RESTRICT,
    PRIMARY KEY (scope_id, implied_id)
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_norm   TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    all_scopes  BOOLEAN NOT NULL DEFAULT FALSE,
    builtin     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX roles_one_default ON roles (is_default) WHERE is_default;

CREATE TABLE role_scopes (
    role_id     TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    scope_id    TEXT NOT NULL REFERENCES scopes(id) ON DELETE RESTRICT,
    PRIMARY KEY (role_id, scope_id)
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    domain_id     TEXT NOT NULL REFERENCES domains(id),
    email         TEXT NOT NULL,
    email_norm    TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    role_id       TEXT NOT NULL REFERENCES roles(id),
    api_access    TEXT NOT NULL DEFAULT 'pending' CHECK (api_access IN ('pending', 'enabled')),
    affiliate_id  TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1,
    UNIQUE (domain_id, email_norm)
);
CREATE INDEX users_email ON users (email_norm, id);
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX users_domain_created ON users (domain_id, created_at, id);
CREATE INDEX users_role ON users (role_id);
CREATE INDEX users_pending ON users (created_at, id) WHERE api_access = 'pending';

-- Substring search over email and name, served by a trigram index.
CREATE VIRTUAL TABLE users_fts USING fts5 (
    email_norm, name, content = 'users', content_rowid = 'rowid', tokenize = 'trigram case_sensitive 0'
);
CREATE TRIGGER users_fts_ai AFTER INSERT ON users BEGIN
    INSERT INTO users_fts (rowid, email_norm, name) VALUES (new.rowid, new.email_norm, new.name);
END;
CREATE TRIGGER users_fts_ad AFTER DELETE ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, email_norm, name) VALUES ('delete', old.rowid, old.email_norm, old.name);
END;
CREATE TRIGGER users_fts_au AFTER UPDATE OF email_norm, name ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, email_norm, name) VALUES ('delete', old.rowid, old.email_norm, old.name);
    INSERT INTO users_fts (rowid, email_norm, name) VALUES (new.rowid, new.email_norm, new.name);
END;

CREATE TABLE stations (
    id                  TEXT PRIMARY KEY,
    domain_id           TEXT NOT NULL REFERENCES domains(id),
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    eu_vat_id           TEXT,
    registration_number TEXT,
    country_code        TEXT,
    created_at          BIGINT NOT NULL,
    version             BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX stations_user ON stations (user_id);
CREATE INDEX stations_domain ON stations (domain_id, created_at, id);
CREATE INDEX stations_vat ON stations (domain_id, eu_vat_id);
CREATE INDEX stations_rn ON stations (domain_id, country_code, registration_number);

CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    account     TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'support', 'admin')),
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE operator_domains (
    operator_id TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    domain_id   TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    PRIMARY KEY (operator_id, domain_id)
);

-- Append-only, hash-chained audit log.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    origin      TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    domain_id   TEXT,
    details     TEXT NOT NULL DEFAULT '{}',
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_at ON audit_events (at);
CREATE INDEX audit_actor ON audit_events (actor, seq);
CREATE INDEX audit_target ON audit_events (target, seq);

-- Credentials and tokens.
-- One row per keyed-hash key version. Every row's hash key is sealed under the
-- current master key; the newest row's check value identifies the current master key.
CREATE TABLE keyring (
    version         BIGINT PRIMARY KEY,
    check_value     TEXT NOT NULL,
    hash_key_sealed TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'verify')),
    public_jwk  TEXT,
    private_enc TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    domain_id     TEXT NOT NULL REFERENCES domains(id),
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    scopes        TEXT NOT NULL DEFAULT '',
    redirect_uris TEXT NOT NULL DEFAULT '',
    expires_at    BIGINT,
    issue_refresh BOOLEAN NOT NULL DEFAULT TRUE,
    rate_exempt   BOOLEAN NOT NULL DEFAULT FALSE,
    last_used_at  BIGINT,
    created_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX api_keys_last_used ON api_keys (last_used_at);
CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE INDEX api_keys_domain ON api_keys (domain_id, created_at, id);
CREATE INDEX api_keys_expires ON api_keys (expires_at);

CREATE TABLE apps (
    id            TEXT PRIMARY KEY,
    domain_id     TEXT NOT NULL REFERENCES domains(id),
    owner_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    scopes        TEXT NOT NULL DEFAULT '',
    redirect_uris TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX apps_owner ON apps (owner_id);

CREATE TABLE consents (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (user_id, app_id)
);
CREATE INDEX consents_app ON consents (app_id);

CREATE TABLE tokens (
    jti           TEXT PRIMARY KEY,
    domain_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    key_id        TEXT,
    app_id        TEXT,
    client_id     TEXT NOT NULL,
    kid           TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    source        TEXT NOT NULL,
    family_id     TEXT,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoked_by    TEXT,
    revoke_reason TEXT
);
CREATE INDEX tokens_user ON tokens (user_id, issued_at);
CREATE INDEX tokens_key ON tokens (key_id);
CREATE INDEX tokens_app ON tokens (app_id, user_id);
CREATE INDEX tokens_domain_issued ON tokens (domain_id, issued_at, jti);
CREATE INDEX tokens_issued ON tokens (issued_at, jti);
CREATE INDEX tokens_expires ON tokens (expires_at);
CREATE INDEX tokens_kid ON tokens (kid, expires_at);
CREATE INDEX tokens_revoked ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
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
CREATE INDEX refresh_family ON refresh_tokens (family_id);
CREATE INDEX refresh_user ON refresh_tokens (user_id);

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    station_id     TEXT,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
