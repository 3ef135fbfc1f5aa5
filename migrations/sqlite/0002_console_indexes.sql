-- Counting live tokens (revoked_at IS NULL AND expires_at > now) read every row in the
-- expiry range: 0.4-2.4 s on 1M records. With revoked_at in the index the count is
-- answered from the index alone (about 10 ms).
DROP INDEX tokens_expires;
CREATE INDEX tokens_expires ON tokens (expires_at, revoked_at);
-- (jti prefixes are served by the primary key: SQLite compares text bytewise.)
