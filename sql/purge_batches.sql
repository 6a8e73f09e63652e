-- The purge step the worker and run_maintenance() share: one batch of at
-- most batch rows past retention, in physical order after where the last
-- batch stopped, so no batch reads again what an earlier one finished.
\set VERBOSITY terse
SET ROLE regress_owner;
CREATE TABLE batch_events (id int, customer_id bigint, happened timestamptz NOT NULL);
-- ids 1..10 expired, 11..14 current
INSERT INTO batch_events SELECT g, 8500 + g % 3, now() - interval '2 days' FROM generate_series(1, 14) g;
UPDATE batch_events SET happened = now() WHERE id > 10;
CREATE TABLE batch_log (what text);
-- the owner's trigger logs every delete and keeps rows 2 and 6: they stay
-- expired, so a batch that read again from the start would match them again
CREATE FUNCTION batch_note() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN
		INSERT INTO batch_log VALUES (current_user || ' ' || TG_OP);
		RETURN CASE WHEN OLD.id IN (2, 6) THEN NULL ELSE OLD END;
	END$$;
CREATE TRIGGER note BEFORE DELETE ON batch_events FOR EACH ROW EXECUTE FUNCTION batch_note();
RESET ROLE;
SELECT privacy_guard.protect('batch_events', 'customer_id', ARRAY['billing'],
							 interval '1 day', 'happened');

-- batches of 4: 4, 4, then 2 and the end (fewer than asked)
CREATE TEMP TABLE batches (n int, matched bigint, processed bigint, last tid, action text, error text);
DO $$
DECLARE
	b record;
	v_after tid := '(0,0)';
	i int := 0;
	v_now timestamptz := now();
BEGIN
	LOOP
		i := i + 1;
		b := privacy_guard._expire_batch('batch_events', 'batch_events', v_now, v_after, 4, NULL);
		INSERT INTO batches VALUES (i, b.matched, b.processed, b.last, b.action, b.error);
		EXIT WHEN b.matched < 4 OR i > 10;
		v_after := b.last;
	END LOOP;
END
$$;
SELECT n, matched, processed, action, error FROM batches ORDER BY n;
-- each batch started after the previous one's last row
SELECT bool_and(b.last > p.last) AS strictly_forward
  FROM batches b JOIN batches p ON p.n = b.n - 1 WHERE b.last IS NOT NULL;
-- every expired row was matched by exactly one batch, the kept ones too
SELECT sum(matched) AS matched_in_all_batches FROM batches;
SELECT array_agg(id ORDER BY id) AS left_over FROM batch_events;
-- the owner's trigger ran as the owner, once per row
SELECT what, count(*) FROM batch_log GROUP BY what;
SET ROLE regress_owner;
CREATE OR REPLACE FUNCTION batch_note() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN INSERT INTO batch_log VALUES (current_user || ' ' || TG_OP); RETURN OLD; END$$;
RESET ROLE;
DELETE FROM batch_events WHERE id IN (2, 6);

-- a batch that the owner's trigger swallows reports it, never a silent success
INSERT INTO batch_events VALUES (20, 8501, now() - interval '5 days');
SET ROLE regress_owner;
CREATE FUNCTION batch_keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER keep BEFORE DELETE ON batch_events FOR EACH ROW EXECUTE FUNCTION batch_keep();
RESET ROLE;
SELECT matched, processed, error
  FROM privacy_guard._expire_batch('batch_events', 'batch_events', now(), '(0,0)', 100, NULL);
SELECT privacy_guard.run_maintenance('batch_events') -> 'errors' AS errors;
-- an error inside the owner's code is kept as its SQLSTATE, not its text
SET ROLE regress_owner;
DROP TRIGGER keep ON batch_events;
CREATE FUNCTION batch_fail() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN RAISE EXCEPTION 'secret-data-%', OLD.customer_id; END$$;
CREATE TRIGGER fail BEFORE DELETE ON batch_events FOR EACH ROW EXECUTE FUNCTION batch_fail();
RESET ROLE;
SELECT privacy_guard.run_maintenance('batch_events') -> 'errors' AS errors;
SET ROLE regress_owner;
DROP TRIGGER fail ON batch_events;
RESET ROLE;
SELECT privacy_guard.run_maintenance('batch_events') -> 'expired' AS expired;

-- the subject column is anonymised to NULL and nothing else
SELECT privacy_guard.set_anonymizer('batch_events', 'customer_id', 'hash');
SELECT privacy_guard.set_anonymizer('batch_events', 'customer_id', 'null');

-- the settings behind the batches
SHOW privacy_guard.batch_size;
SHOW privacy_guard.batch_delay;
SHOW privacy_guard.log_retention;
SET privacy_guard.batch_size = 10;

SELECT privacy_guard.unprotect('batch_events');
DROP TABLE batch_events, batch_log;
DROP FUNCTION batch_note(), batch_keep(), batch_fail();
