/* the change ring: how a connection caught up with consent changes */

CREATE FUNCTION privacy_guard._store_patches(OUT from_ring bigint, OUT queried bigint, OUT merged bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pvg_store_patches'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._store_patches() IS 'Internal: how often this connection caught up with consent changes from the shared change ring, and by querying the tables, and the shared sets it built by merging one with its changes';
REVOKE ALL ON FUNCTION privacy_guard._store_patches() FROM PUBLIC;
