-- The token journal moves to a database file of its own, `PATH.grants` beside the
-- database, attached to every connection as `grants` (see `store::attach_journal`,
-- which creates its table). With the journal in the same file, moving it into `tokens`
-- and `refresh_tokens` held SQLite's single write lock and the token recorder, and so
-- every grant in flight, waited ~20 ms each time; in two files the recorder appends
-- while the move writes the token tables. What the old journal still holds is moved
-- here, then its table dropped, so `token_journal` names the attached one.
INSERT INTO tokens (jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source,
                    family_id, issued_at, expires_at)
SELECT jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id,
       issued_at, expires_at
FROM main.token_journal WHERE true ORDER BY seq
ON CONFLICT (jti) DO NOTHING;
INSERT INTO refresh_tokens (token_hash, family_id, domain_id, user_id, key_id, app_id,
                            client_id, scopes, issued_at, expires_at)
SELECT refresh_hash, family_id, domain_id, user_id, key_id, app_id, client_id, scopes,
       issued_at, refresh_expires_at
FROM main.token_journal WHERE refresh_hash IS NOT NULL ORDER BY seq
ON CONFLICT (token_hash) DO NOTHING;
DROP TABLE main.token_journal;
