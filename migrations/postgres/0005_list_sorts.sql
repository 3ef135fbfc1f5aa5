-- The console sorts stations by name and API keys by last use (`s`), paged by keyset
-- like every list: each order gets an index, for all domains and for one. A station's
-- name sorts case-blind (the console's cursor is the value the database computed). A
-- key never used sorts as used at time 0: the stalest.
CREATE INDEX stations_name ON stations (lower(name), id);
CREATE INDEX stations_domain_name ON stations (domain_id, lower(name), id);
CREATE INDEX api_keys_used ON api_keys ((coalesce(last_used_at, 0)), id);
CREATE INDEX api_keys_domain_used ON api_keys (domain_id, (coalesce(last_used_at, 0)), id);
-- Both lists in creation order over every domain (an administrator's default) had only
-- the per-domain index: each page sorted the whole table.
CREATE INDEX stations_created ON stations (created_at, id);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
