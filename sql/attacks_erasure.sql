-- Erasure under attack: a table owner (or someone who can plant objects)
-- trying to keep a forgotten subject's rows while the request reads done.
-- (Concurrent re-inserts and long-held locks: test/specs/attacks_forget_*.)
\set VERBOSITY terse

SET ROLE regress_owner;
CREATE TABLE er_people (id bigint, email text);
INSERT INTO er_people SELECT g, 'er' || g || '@example.org' FROM generate_series(71, 79) g;
GRANT SELECT ON er_people TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('er_people', 'id', ARRAY['billing'], on_forget => 'delete');

-- attack: an ON DELETE DO INSTEAD NOTHING rule swallows the erasure
SET ROLE regress_owner;
CREATE RULE er_keep AS ON DELETE TO er_people DO INSTEAD NOTHING;
RESET ROLE;
SELECT privacy_guard.forget('71') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT count(*) AS rows_kept FROM er_people WHERE id = 71;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT count(*) AS visible FROM er_people WHERE id = 71;
RESET ROLE;
SET ROLE regress_owner;
DROP RULE er_keep ON er_people;
RESET ROLE;
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state FROM privacy_guard.erasure_requests WHERE id = :req;

-- attack: an ON DELETE DO INSTEAD rule that rewrites the row instead
SET ROLE regress_owner;
CREATE RULE er_rewrite AS ON DELETE TO er_people
	DO INSTEAD UPDATE er_people SET email = 'kept' WHERE id = old.id;
RESET ROLE;
SELECT privacy_guard.forget('72') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT count(*) AS rows_kept FROM er_people WHERE id = 72;
SET ROLE regress_owner;
DROP RULE er_rewrite ON er_people;
RESET ROLE;

-- attack: a BEFORE DELETE trigger that puts a copy of the row back
SET ROLE regress_owner;
CREATE FUNCTION er_reinsert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF pg_trigger_depth() = 1 THEN
		INSERT INTO er_people VALUES (OLD.id, OLD.email);
	END IF;
	RETURN OLD;
END
$$;
CREATE TRIGGER er_reinsert BEFORE DELETE ON er_people FOR EACH ROW EXECUTE FUNCTION er_reinsert();
RESET ROLE;
SELECT privacy_guard.forget('73') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT count(*) AS rows_kept FROM er_people WHERE id = 73;
SET ROLE regress_owner;
DROP TRIGGER er_reinsert ON er_people;
RESET ROLE;

-- attack: a trigger error that carries the row's personal data in its
-- message ends up in the receipt
SET ROLE regress_owner;
CREATE FUNCTION er_shout() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN RAISE EXCEPTION 'refusing to delete %', OLD.email; END$$;
CREATE TRIGGER er_shout BEFORE DELETE ON er_people FOR EACH ROW EXECUTE FUNCTION er_shout();
RESET ROLE;
SELECT privacy_guard.forget('74') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error, error LIKE '%er74%' AS error_shows_data
  FROM privacy_guard.erasure_requests WHERE id = :req;
SET ROLE regress_owner;
DROP TRIGGER er_shout ON er_people;
RESET ROLE;

-- attack: the same, raised with SQLSTATE 55000, the code of privacy_guard's
-- own messages: the receipt keeps only the SQLSTATE (error_shows_data false).
SET ROLE regress_owner;
CREATE FUNCTION er_shout_55000() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN RAISE EXCEPTION 'refusing to delete %', OLD.email USING ERRCODE = '55000'; END$$;
CREATE TRIGGER er_shout BEFORE DELETE ON er_people FOR EACH ROW EXECUTE FUNCTION er_shout_55000();
RESET ROLE;
SELECT privacy_guard.forget('75') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error LIKE '%er75%' AS error_shows_data
  FROM privacy_guard.erasure_requests WHERE id = :req;
SET ROLE regress_owner;
DROP TRIGGER er_shout ON er_people;
RESET ROLE;
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT count(*) AS rows_left FROM er_people WHERE id BETWEEN 71 AND 75;

-- attack: on anonymisation, a BEFORE UPDATE trigger that restores the subject
SET ROLE regress_owner;
CREATE TABLE er_visits (who bigint, place text);
INSERT INTO er_visits VALUES (76, 'er-place-76'), (77, 'er-place-77');
CREATE FUNCTION er_restore() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN NEW.who := OLD.who; RETURN NEW; END$$;
CREATE TRIGGER er_restore BEFORE UPDATE ON er_visits FOR EACH ROW EXECUTE FUNCTION er_restore();
RESET ROLE;
SELECT privacy_guard.protect('er_visits', 'who', ARRAY['billing'], on_forget => 'anonymize');
SELECT privacy_guard.set_anonymizer('er_visits', 'place', 'redact');
SELECT privacy_guard.forget('76') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT who, place FROM er_visits ORDER BY place;
SET ROLE regress_owner;
DROP TRIGGER er_restore ON er_visits;
RESET ROLE;

-- attack: an identity function as the subject column's anonymiser would keep
-- the link to the person: set_anonymizer refuses anything but NULL there,
-- and the request anonymises the subject to NULL
CREATE FUNCTION public.er_same(bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT $1';
SELECT privacy_guard.set_anonymizer('er_visits', 'who', 'public.er_same');
SELECT privacy_guard.forget('77') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
SELECT state, error FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT privacy_guard.set_anonymizer('er_visits', 'who', 'null');
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT who, place FROM er_visits ORDER BY place;
SELECT privacy_guard.unprotect('er_visits');
DROP TABLE er_visits;
DROP FUNCTION public.er_same(bigint);

-- attack: rows past retention kept by a DO INSTEAD NOTHING rule stay hidden
-- (rule 6 holds), and the round reports the table in "errors".
SET ROLE regress_owner;
CREATE TABLE er_log (who bigint, at date);
INSERT INTO er_log VALUES (78, current_date - 400), (79, current_date);
CREATE RULE er_keep_log AS ON DELETE TO er_log DO INSTEAD NOTHING;
GRANT SELECT ON er_log TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('er_log', 'who', ARRAY['billing'], interval '1 year', 'at');
SELECT privacy_guard.run_maintenance('er_log') -> 'errors' AS errors;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT who FROM er_log ORDER BY who;
RESET ROLE;
SELECT count(*) AS rows_past_retention_left FROM er_log WHERE at < current_date - 365;
SELECT privacy_guard.unprotect('er_log');
DROP TABLE er_log;

-- attack: a forget request for another spelling of a key ('078') must not
-- erase subject 78, who never asked and whose rows it did not hide: keys
-- match the column's canonical text form only.  (With a protected text
-- subject column, which could hold '078' as it is, forget() accepts it.)
CREATE TABLE er_text_keys (who text);
SELECT privacy_guard.protect('er_text_keys', 'who', ARRAY['billing']);
SELECT privacy_guard.forget('078') AS req \gset
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT count(*) AS visible_before FROM er_people WHERE id = 78;
RESET ROLE;
SELECT privacy_guard.run_maintenance() ->> 'requests_blocked' AS blocked;
-- and the request, which found nothing under that spelling, does not read
-- done: it is blocked with an error that names the type, never the key
-- (issue 12.4); withdrawn here, as it would stay blocked in every round
SELECT state, counts, error FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT count(*) AS rows_of_78 FROM er_people WHERE id = 78;
DELETE FROM privacy_guard.erasure_request WHERE id = :req;
SELECT privacy_guard.unprotect('er_text_keys');
DROP TABLE er_text_keys;

-- attack: the owner detaches a partition holding a subject's rows; the
-- detached partition still carries the rules, and the engine erases from it
-- too, so the rows never show again.
SET ROLE regress_owner;
CREATE TABLE er_orders (id int, customer bigint) PARTITION BY RANGE (id);
CREATE TABLE er_orders_a PARTITION OF er_orders FOR VALUES FROM (0) TO (10);
CREATE TABLE er_orders_b PARTITION OF er_orders FOR VALUES FROM (10) TO (20);
INSERT INTO er_orders VALUES (1, 81), (11, 81), (12, 82);
GRANT SELECT ON er_orders, er_orders_a, er_orders_b TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('er_orders', 'customer', ARRAY['billing']);
SET ROLE regress_owner;
ALTER TABLE er_orders DETACH PARTITION er_orders_b;
RESET ROLE;
SELECT privacy_guard.forget('81') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT count(*) AS rows_left_in_detached FROM er_orders_b WHERE customer = 81;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT id, customer FROM er_orders_b ORDER BY id;
RESET ROLE;
DROP TABLE er_orders_b;
SELECT privacy_guard.unprotect('er_orders');
DROP TABLE er_orders;

-- attack: an operator planted in public (here by the owner; any role with
-- CREATE on public could) for the varchar subject column would answer an
-- unqualified "=": the engine's statements name OPERATOR(pg_catalog.=), so
-- the planted one never runs and no row of the subject is left.
SET ROLE regress_owner;
CREATE TABLE er_members (handle varchar(20), note text);
INSERT INTO er_members VALUES ('er-alice', 'a'), ('er-bob', 'b');
GRANT SELECT ON er_members TO regress_app;
CREATE FUNCTION public.er_never(varchar, varchar) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.er_never);
RESET ROLE;
SELECT privacy_guard.protect('er_members', 'handle', ARRAY['billing']);
SELECT privacy_guard.forget('er-alice') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state FROM privacy_guard.erasure_requests WHERE id = :req;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT handle FROM er_members ORDER BY handle;
RESET ROLE;
RESET privacy_guard.purpose;
SELECT privacy_guard.unprotect('er_members');
DROP TABLE er_members;
DROP OPERATOR public.= (varchar, varchar);
DROP FUNCTION public.er_never(varchar, varchar);

SELECT privacy_guard.unprotect('er_people');
DROP TABLE er_people;
