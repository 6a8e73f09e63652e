CREATE VIEW privacy_guard.worker_status AS
	SELECT pg_catalog.current_database() AS database, w.rounds, w.last_round_at,
		   w.last_round_duration, w.rows_deleted,
		   w.rows_anonymized, w.rows_restricted, w.requests_done, w.errors, w.last_error,
		   w.last_error_at
	  FROM privacy_guard.worker_round w;
COMMENT ON VIEW privacy_guard.worker_status IS 'The background worker''s rounds in this database';

CREATE FUNCTION privacy_guard.launcher_status(OUT workers_running integer, OUT workers_started bigint,
		OUT found_no_extension bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'pvg_launcher_status'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard.launcher_status() IS 'The launcher''s counters since the server started, for the whole cluster: workers running now, workers started, and workers that found no extension in their database (NULLs without shared_preload_libraries)';
REVOKE ALL ON FUNCTION privacy_guard.launcher_status() FROM PUBLIC;

CREATE FUNCTION privacy_guard._extension_created()
RETURNS void
AS 'MODULE_PATHNAME', 'pvg_extension_created'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION privacy_guard._extension_created() IS 'Internal: have the launcher look again, once this transaction commits, at the databases where it found no extension';
REVOKE ALL ON FUNCTION privacy_guard._extension_created() FROM PUBLIC;
CREATE FUNCTION privacy_guard._database_chosen()
RETURNS boolean
AS 'MODULE_PATHNAME', 'pvg_database_chosen_here'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION privacy_guard._database_chosen() IS 'Internal: whether privacy_guard.databases lets the background worker run rounds in this database';

/* this database now has the extension: the launcher's next look finds it */
SELECT privacy_guard._extension_created();

