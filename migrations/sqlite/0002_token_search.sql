-- Nothing to change on SQLite: its primary-key index on tokens.jti already serves the
-- console's jti-prefix ranges (binary collation). Kept so both engines share versions.
SELECT 1;
