-- Retention by partition: a range partition of a table partitioned by its
-- retention column that is wholly past retention (and past a legal hold) is
-- emptied with TRUNCATE, as the table's owner, and counted as rows deleted;
-- a partition only partly past retention, one whose rows an owner's ON
-- DELETE trigger or a foreign key must see go, and a table that anonymizes
-- at expiry go row by row.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS privacy_guard;
SELECT privacy_guard.define_purpose('ptr_billing', 'contract');
SELECT privacy_guard.define_purpose('ptr_tax', 'legal_obligation');
DO $$BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ptr_owner') THEN
		CREATE ROLE ptr_owner;
	END IF;
END$$;
GRANT CREATE ON SCHEMA public TO ptr_owner;
RESET client_min_messages;

SET ROLE ptr_owner;
CREATE TABLE ptr_log (what text);
CREATE FUNCTION ptr_note() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN
		INSERT INTO ptr_log VALUES (current_user || ' ' || TG_OP || ' ' || TG_TABLE_NAME);
		RETURN OLD;
	END$$;
-- Monthly partitions m0 (this month) .. m5 (five months ago) of tables
-- partitioned by their retention column; rows at each partition's lower
-- end (low = true) and at its upper end (the last second before it).
CREATE FUNCTION ptr_months(tbl text, low boolean, rows_each int) RETURNS void LANGUAGE plpgsql AS
	$$DECLARE
		m timestamptz := date_trunc('month', now());
	BEGIN
		FOR k IN 0..5 LOOP
			EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
						   tbl || '_m' || k, tbl, m - make_interval(months => k), m - make_interval(months => k - 1));
			EXECUTE format('INSERT INTO %I (id, customer, happened) SELECT %s * 100 + g, g %% 3, %L FROM generate_series(1, %s) g',
						   tbl, k, CASE WHEN low THEN m - make_interval(months => k)
										ELSE m - make_interval(months => k - 1) - interval '1 second' END,
						   rows_each);
		END LOOP;
	END$$;
CREATE TABLE ptr_events (id int, customer bigint, happened timestamptz NOT NULL) PARTITION BY RANGE (happened);
SELECT ptr_months('ptr_events', true, 10);
-- m2 also holds rows at its upper end, not yet expired under a retention of two months
INSERT INTO ptr_events SELECT 250 + g, g, date_trunc('month', now()) - interval '1 month' - interval '1 second'
  FROM generate_series(1, 3) g;
-- the owner's code on TRUNCATE runs as the owner
CREATE TRIGGER note_truncate AFTER TRUNCATE ON ptr_events_m3 FOR EACH STATEMENT EXECUTE FUNCTION ptr_note();
-- m5 has the owner's ON DELETE trigger: its rows go one by one, each seen by it
CREATE TRIGGER note_delete BEFORE DELETE ON ptr_events_m5 FOR EACH ROW EXECUTE FUNCTION ptr_note();
RESET ROLE;
SELECT privacy_guard.protect('ptr_events', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');

SELECT tableoid::regclass AS part, count(*) FROM ptr_events GROUP BY 1 ORDER BY 1;
-- what the bounds say (current: not even read), which partitions may be emptied in one step
SELECT c.relname, privacy_guard._part_span(c.oid::regclass, 'ptr_events', now()) AS span,
	   privacy_guard._truncatable_part(c.oid::regclass, 'ptr_events', now()) AS truncatable
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'ptr_events'::regclass ORDER BY 1;
SELECT relfilenode AS m3_file FROM pg_class WHERE relname = 'ptr_events_m3' \gset
SELECT r #> '{expired,public.ptr_events}' AS expired, r #> '{errors,public.ptr_events}' AS errors
  FROM privacy_guard.run_maintenance('ptr_events') r;
-- m3 and m4 emptied (m3 by TRUNCATE: a new file), m5 row by row, m2 only its expired rows
SELECT tableoid::regclass AS part, count(*) FROM ptr_events GROUP BY 1 ORDER BY 1;
SELECT relfilenode <> :m3_file AS m3_truncated FROM pg_class WHERE relname = 'ptr_events_m3';
SELECT what, count(*) FROM ptr_log GROUP BY what ORDER BY what;
-- the round's history counts them as deleted
SELECT h.rows_deleted, h.tables -> 'public.ptr_events' AS tables
  FROM privacy_guard.round_history h ORDER BY h.started_at DESC, h.id DESC LIMIT 1;
-- nothing more to do: empty partitions are left alone, nothing counted twice
SELECT r #> '{expired,public.ptr_events}' AS expired FROM privacy_guard.run_maintenance('ptr_events') r;
SELECT count(*) AS rows_left FROM ptr_events;

-- the worker counts a truncated partition's rows in worker_status as rows deleted
BEGIN;
SELECT coalesce((SELECT rows_deleted FROM privacy_guard.worker_round), 0) AS before_rows \gset
SELECT privacy_guard._count_batch('truncated', 7);
SELECT rows_deleted - :before_rows AS counted FROM privacy_guard.worker_round;
ROLLBACK;

-- a legal hold keeps rows until happened + 4 months: m5 is past it too and
-- goes in one step; m3 and m4 (rows at their upper ends) are kept, restricted
SET ROLE ptr_owner;
CREATE TABLE ptr_held (id int, customer bigint, happened timestamptz NOT NULL) PARTITION BY RANGE (happened);
SELECT ptr_months('ptr_held', false, 5);
RESET ROLE;
SELECT privacy_guard.protect('ptr_held', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');
SELECT privacy_guard.set_legal_hold('ptr_held', interval '4 months', 'ptr_tax');
SELECT r #> '{expired,public.ptr_held}' AS expired, r #> '{errors,public.ptr_held}' AS errors
  FROM privacy_guard.run_maintenance('ptr_held') r;
SELECT tableoid::regclass AS part, count(*) FROM ptr_held GROUP BY 1 ORDER BY 1;

-- a foreign key to the table: rows go one by one, so ON DELETE CASCADE
-- takes the rows that refer to them (a TRUNCATE would fail or skip it)
SET ROLE ptr_owner;
CREATE TABLE ptr_orders (id int, customer bigint, happened timestamptz NOT NULL, PRIMARY KEY (id, happened))
	PARTITION BY RANGE (happened);
SELECT ptr_months('ptr_orders', true, 4);
CREATE TABLE ptr_lines (order_id int, happened timestamptz,
						FOREIGN KEY (order_id, happened) REFERENCES ptr_orders ON DELETE CASCADE);
INSERT INTO ptr_lines SELECT id, happened FROM ptr_orders;
RESET ROLE;
SELECT privacy_guard.protect('ptr_orders', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');
SELECT privacy_guard._truncatable_part('ptr_orders_m4', 'ptr_orders', now()) AS m4_truncatable;
SELECT r #> '{expired,public.ptr_orders}' AS expired, r #> '{errors,public.ptr_orders}' AS errors
  FROM privacy_guard.run_maintenance('ptr_orders') r;
SELECT count(*) AS orders_left, (SELECT count(*) FROM ptr_lines) AS lines_left FROM ptr_orders;

-- anonymized at expiry: rows stay (subject cut), nothing truncated
SET ROLE ptr_owner;
CREATE TABLE ptr_visits (id int, customer bigint, happened timestamptz NOT NULL) PARTITION BY RANGE (happened);
SELECT ptr_months('ptr_visits', true, 2);
RESET ROLE;
SELECT privacy_guard.protect('ptr_visits', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened',
							 on_expiry => 'anonymize');
SELECT r #> '{expired,public.ptr_visits}' AS expired FROM privacy_guard.run_maintenance('ptr_visits') r;
SELECT tableoid::regclass AS part, count(*) AS n, count(customer) AS with_subject
  FROM ptr_visits GROUP BY 1 ORDER BY 1;

-- a partition below a sub-partitioned level: the level above bounds it by
-- the retention column; a table partitioned by another column does not count
SET ROLE ptr_owner;
CREATE TABLE ptr_sub (id int, customer bigint, happened timestamptz NOT NULL) PARTITION BY RANGE (happened);
CREATE TABLE ptr_sub_old PARTITION OF ptr_sub FOR VALUES FROM (MINVALUE) TO ('2000-01-01') PARTITION BY LIST (customer);
CREATE TABLE ptr_sub_old_1 PARTITION OF ptr_sub_old FOR VALUES IN (1);
CREATE TABLE ptr_sub_new PARTITION OF ptr_sub FOR VALUES FROM ('2000-01-01') TO (MAXVALUE);
CREATE TABLE ptr_by_id (id int, customer bigint, happened timestamptz NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE ptr_by_id_1 PARTITION OF ptr_by_id FOR VALUES FROM (1) TO (100);
RESET ROLE;
SELECT privacy_guard.protect('ptr_sub', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');
SELECT privacy_guard.protect('ptr_by_id', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');
SELECT privacy_guard._truncatable_part('ptr_sub_old_1', 'ptr_sub', now()) AS old_leaf,
	   privacy_guard._truncatable_part('ptr_sub_new', 'ptr_sub', now()) AS maxvalue_part,
	   privacy_guard._truncatable_part('ptr_by_id_1', 'ptr_by_id', now()) AS other_key;

-- date and timestamp (without time zone) retention columns: the bounds read in as their type
SET ROLE ptr_owner;
CREATE TABLE ptr_days (id int, customer bigint, happened date NOT NULL) PARTITION BY RANGE (happened);
CREATE TABLE ptr_days_old PARTITION OF ptr_days FOR VALUES FROM ('2000-01-01') TO ('2000-02-01');
CREATE TABLE ptr_days_future PARTITION OF ptr_days FOR VALUES FROM ('2990-01-01') TO ('2990-02-01');
CREATE TABLE ptr_stamps (id int, customer bigint, happened timestamp NOT NULL) PARTITION BY RANGE (happened);
CREATE TABLE ptr_stamps_old PARTITION OF ptr_stamps FOR VALUES FROM ('2000-01-01 00:00') TO ('2000-02-01 00:00');
CREATE TABLE ptr_stamps_future PARTITION OF ptr_stamps FOR VALUES FROM ('2990-01-01 00:00') TO ('2990-02-01 00:00');
RESET ROLE;
SELECT privacy_guard.protect('ptr_days', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');
SELECT privacy_guard.protect('ptr_stamps', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');
SELECT privacy_guard._part_span('ptr_days_old', 'ptr_days', now()) AS days_old,
	   privacy_guard._part_span('ptr_days_future', 'ptr_days', now()) AS days_future,
	   privacy_guard._part_span('ptr_stamps_old', 'ptr_stamps', now()) AS stamps_old,
	   privacy_guard._part_span('ptr_stamps_future', 'ptr_stamps', now()) AS stamps_future;

-- the count before a TRUNCATE is not cut short by the engine's time limit
-- (no owner code runs in it); the caller's limit is back afterwards
SET ROLE ptr_owner;
CREATE TABLE ptr_lim (id int, customer bigint, happened timestamptz NOT NULL) PARTITION BY RANGE (happened);
SELECT ptr_months('ptr_lim', true, 2);
RESET ROLE;
SELECT privacy_guard.protect('ptr_lim', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');
BEGIN;
SET LOCAL privacy_guard.engine_time_limit = '5s';
SELECT r #> '{expired,public.ptr_lim}' AS expired FROM privacy_guard.run_maintenance('ptr_lim') r;
SHOW privacy_guard.engine_time_limit;
COMMIT;

-- switched off: the same partitions go row by row
SET ROLE ptr_owner;
CREATE TABLE ptr_off (id int, customer bigint, happened timestamptz NOT NULL) PARTITION BY RANGE (happened);
SELECT ptr_months('ptr_off', true, 3);
RESET ROLE;
SELECT privacy_guard.protect('ptr_off', 'customer', ARRAY['ptr_billing'], interval '2 months', 'happened');
SET privacy_guard.truncate_partitions = off;
SELECT r #> '{expired,public.ptr_off}' AS expired FROM privacy_guard.run_maintenance('ptr_off') r;
RESET privacy_guard.truncate_partitions;
SELECT count(*) AS off_left FROM ptr_off;

-- clean up
SELECT privacy_guard.unprotect(t) FROM unnest(ARRAY['ptr_events', 'ptr_held', 'ptr_orders', 'ptr_visits', 'ptr_off', 'ptr_sub', 'ptr_by_id', 'ptr_days', 'ptr_stamps', 'ptr_lim']::regclass[]) t;
DROP TABLE ptr_lines, ptr_orders, ptr_events, ptr_held, ptr_visits, ptr_off, ptr_sub, ptr_by_id, ptr_days, ptr_stamps, ptr_lim, ptr_log;
DROP FUNCTION ptr_note(), ptr_months(text, boolean, int);
