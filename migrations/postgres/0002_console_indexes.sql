-- Counting live tokens (revoked_at IS NULL AND expires_at > now) answered from the
-- index alone.
DROP INDEX tokens_expires;
CREATE INDEX tokens_expires ON tokens (expires_at, revoked_at);
-- The console's token search matches jti prefixes with LIKE 'prefix%', which a plain
-- b-tree serves only under the C collation; text_pattern_ops serves it under any.
CREATE INDEX tokens_jti_pattern ON tokens (jti text_pattern_ops);
