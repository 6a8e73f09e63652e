-- bench/purge_setup.sql -- data set and helpers for bench/purge_bench.sh (SPEC section 5, "Purging", "Forget")
--
-- Run once by purge_bench.sh as the cluster's superuser, with psql variables
--   rows             rows of the purge source table (SPEC/issue 3: 2,000,000)
--   subjects         data subjects in it
--   layout           'random': every page holds ~25% expired rows (rows inserted
--                    in id order, expiry spread evenly over them);
--                    'ordered': the oldest 25% come first, as a table filled in
--                    time order would have them
--   oltp_rows        rows of the plain table the pgbench clients work on
--   forget_rows      rows of each of the 5 forget tables (SPEC: 1,000,000)
--   forget_subjects  subjects in each forget table (rows / 10: ~50 rows per
--                    subject across the 5 tables)
--
-- Builds:
--   src_t          the purge data set: 25% of rows past a 365-day retention
--                  (400-441 days old), the rest 0-41 days old; never purged
--                  itself: every measurement purges a fresh copy (bench_copy)
--   oltp_t         plain table for the pgbench clients (point select + update)
--   f1 .. f5       the forget tables, protected without retention (so a round
--                  has no purge work), subject column indexed
--   bench_round    one row per background round (a trigger on
--                  privacy_guard.worker_round): its duration and its rows, so
--                  the script reads the round that did the work, never a later one
--   bench_hand_purge(tbl, batch, cutoff [, delay_ms])  the hand-written batched DELETE loop (paced with delay_ms)

\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

CREATE EXTENSION privacy_guard;
SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoicing and payments');

-- the purge data set; the subject column is nullable (anonymising sets it to NULL)
CREATE TABLE src_t (
	id			bigint NOT NULL,
	customer_id bigint,
	amount		numeric(12, 2) NOT NULL,
	note		text NOT NULL,
	created_at	timestamptz NOT NULL
);
INSERT INTO src_t
SELECT i,
	   (i % :subjects) + 1,
	   ((i * 7919) % 100000) / 100.0,
	   substr(md5(i::text), 1, 30),
	   now() - (i % 1000) * interval '1 hour'
		   - CASE WHEN CASE :'layout' WHEN 'ordered' THEN i <= :rows / 4
									  ELSE (i * 7919) % 100 < 25 END
				  THEN interval '400 days' ELSE interval '0' END
  FROM generate_series(1::bigint, :rows) AS i;

-- the OLTP table (pgbench: point selects and single-row updates)
CREATE TABLE oltp_t (
	id			integer PRIMARY KEY,
	abalance	integer NOT NULL,
	filler		char(84)
) WITH (fillfactor = 90);
INSERT INTO oltp_t SELECT i, 0, '' FROM generate_series(1, :oltp_rows) AS i;

-- the forget tables: ~10 rows per subject in each, subject column indexed
SELECT format($f$
	CREATE TABLE f%1$s (
		id			bigint PRIMARY KEY,
		customer_id bigint NOT NULL,
		amount		numeric(12, 2) NOT NULL,
		note		text NOT NULL,
		created_at	timestamptz NOT NULL
	);
	INSERT INTO f%1$s
	SELECT i, ((i * 7919 + %1$s) %% %3$s) + 1, (i %% 100000) / 100.0,
		   substr(md5(i::text || 'f%1$s'), 1, 30), now() - (i %% 1000) * interval '1 hour'
	  FROM generate_series(1::bigint, %2$s) AS i;
	CREATE INDEX ON f%1$s (customer_id);
	SELECT privacy_guard.protect('f%1$s', 'customer_id', ARRAY['billing']);
	$f$, k, :forget_rows, :forget_subjects)
  FROM generate_series(1, 5) AS k \gexec

-- every background round, as worker_round records it at the round's end
CREATE TABLE bench_round (
	seq			bigserial PRIMARY KEY,
	rounds		bigint,
	duration_ms float8,
	deleted		bigint,
	anonymized	bigint,
	ended_at	float8,		-- epoch seconds
	total_deleted bigint,	-- worker_status's running totals at the round's end
	total_anonymized bigint
);
CREATE FUNCTION bench_log_round()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/*
	 * worker_round is also updated by every purge batch as it commits (so a
	 * crash loses no count); a round ends when "rounds" moves, and its rows
	 * are the totals' growth since the previous round ended.
	 */
	INSERT INTO public.bench_round (rounds, duration_ms, deleted, anonymized, ended_at,
									total_deleted, total_anonymized)
	SELECT NEW.rounds, extract(epoch FROM NEW.last_round_duration) * 1000,
		   NEW.rows_deleted - coalesce(p.total_deleted, 0),
		   NEW.rows_anonymized - coalesce(p.total_anonymized, 0),
		   extract(epoch FROM clock_timestamp()), NEW.rows_deleted, NEW.rows_anonymized
	  FROM (SELECT NULL) x
	  LEFT JOIN LATERAL (SELECT b.total_deleted, b.total_anonymized FROM public.bench_round b
						  ORDER BY b.seq DESC LIMIT 1) p ON true;
	RETURN NULL;
END
$$;
CREATE TRIGGER bench_log_round AFTER UPDATE ON privacy_guard.worker_round
	FOR EACH ROW WHEN (NEW.rounds IS DISTINCT FROM OLD.rounds)
	EXECUTE FUNCTION public.bench_log_round();

-- the hand-written alternative: batched DELETE, oldest first through the
-- index on created_at, skipping locked rows, committing per batch; with
-- delay_ms, paced as the worker paces its batches (worker.c): after each
-- batch a pause of delay_ms or twice what the batch took, whichever is
-- longer (run with synchronous_commit off, as the worker's batches commit;
-- unlike the worker's pause, pg_sleep() holds a snapshot while it sleeps)
CREATE PROCEDURE bench_hand_purge(tbl regclass, batch integer, cutoff timestamptz, delay_ms integer DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
	n bigint;
	t0 timestamptz;
BEGIN
	LOOP
		t0 := clock_timestamp();
		EXECUTE format('DELETE FROM %1$s WHERE id IN (SELECT id FROM %1$s WHERE created_at < $1 '
					   'ORDER BY created_at LIMIT %2$s FOR UPDATE SKIP LOCKED)', tbl, batch)
			USING cutoff;
		GET DIAGNOSTICS n = ROW_COUNT;
		COMMIT;
		EXIT WHEN n < batch;
		IF delay_ms IS NOT NULL THEN
			PERFORM pg_sleep(greatest(delay_ms, 2 * extract(epoch FROM clock_timestamp() - t0) * 1000) / 1000.0);
		END IF;
	END LOOP;
END
$$;

VACUUM (FREEZE, ANALYZE);
CHECKPOINT;
