-- The token service now appends each batch of grants to `token_journal` directly, with
-- one liveness check for the whole batch in the same statement (see
-- `store::grants::record_grants`). The `grant_rows` view's INSTEAD OF trigger, which
-- copied every row into a scratch table and ran the check once per row, cost about
-- as much as the insert itself. PostgreSQL keeps its view: its trigger writes the
-- token tables directly.
DROP TRIGGER grant_rows_insert;
DROP VIEW grant_rows;
