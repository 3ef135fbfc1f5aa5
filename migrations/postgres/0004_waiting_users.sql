-- "Waiting for API access" is an active user whose access is not enabled yet: a
-- disabled user cannot be given access, so the support inbox (the Dashboard, `user
-- list --pending`) leaves it out. The partial index follows, so counting and paging
-- the inbox stays an index scan.
DROP INDEX users_pending;
CREATE INDEX users_waiting ON users (created_at, id) WHERE api_access = 'pending' AND status = 'active';
