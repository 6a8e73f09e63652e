/* ------------------------------------------------------------------ */
/* Tables (written only through the functions below)                   */
/* ------------------------------------------------------------------ */

/*
 * Plain sequences rather than identity columns: a sequence created by the
 * script is a member of the extension, so pg_dump can carry its position.
 */
CREATE SEQUENCE privacy_guard.purpose_id_seq AS integer;
CREATE SEQUENCE privacy_guard.consent_ledger_id_seq;
CREATE SEQUENCE privacy_guard.erasure_request_id_seq;

CREATE TABLE privacy_guard.purpose (
	id			integer NOT NULL UNIQUE
				DEFAULT pg_catalog.nextval('privacy_guard.purpose_id_seq'::pg_catalog.regclass),
	name		text PRIMARY KEY
				CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})*$'),
	parent		text REFERENCES privacy_guard.purpose (name),
	legal_basis text NOT NULL
				CHECK (legal_basis OPERATOR(pg_catalog.=) ANY (ARRAY['consent', 'contract',
						'legal_obligation', 'vital_interests', 'public_task',
						'legitimate_interests'])),
	description text
);
COMMENT ON TABLE privacy_guard.purpose IS 'Purposes of processing; dotted names form a hierarchy';

CREATE TABLE privacy_guard.purpose_role (
	role		regrole NOT NULL,
	purpose		text NOT NULL REFERENCES privacy_guard.purpose (name),
	PRIMARY KEY (role, purpose)
);
COMMENT ON TABLE privacy_guard.purpose_role IS 'Roles authorised for a purpose (and its descendants of the same legal basis)';

CREATE TABLE privacy_guard.consent_ledger (
	id			bigint PRIMARY KEY
				DEFAULT pg_catalog.nextval('privacy_guard.consent_ledger_id_seq'::pg_catalog.regclass),
	subject		text NOT NULL,
	purpose		text NOT NULL,
	action		text NOT NULL
				CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['grant', 'withdraw', 'object'])),
	valid_until timestamptz,
	evidence	jsonb,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	recorded_by name NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX consent_ledger_subject ON privacy_guard.consent_ledger (subject);
COMMENT ON TABLE privacy_guard.consent_ledger IS 'Append-only history of grants, withdrawals and objections (GDPR Art. 7(1))';

CREATE TABLE privacy_guard.consent_state (
	subject		text NOT NULL,
	purpose		text NOT NULL REFERENCES privacy_guard.purpose (name),
	status		text NOT NULL
				CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['granted', 'withdrawn', 'objected'])),
	valid_until timestamptz,
	changed_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	PRIMARY KEY (subject, purpose)
);
CREATE INDEX consent_state_changed ON privacy_guard.consent_state (changed_xid);
COMMENT ON TABLE privacy_guard.consent_state IS 'Current consent or objection per subject and purpose';

CREATE TABLE privacy_guard.protected_table (
	relid		regclass PRIMARY KEY,
	subject_column name NOT NULL,
	purposes	text[] NOT NULL,
	retention	interval,
	retention_column name,
	on_expiry	text NOT NULL DEFAULT 'delete'
				CHECK (on_expiry OPERATOR(pg_catalog.=) ANY (ARRAY['delete', 'anonymize'])),
	on_forget	text NOT NULL DEFAULT 'delete'
				CHECK (on_forget OPERATOR(pg_catalog.=) ANY (ARRAY['delete', 'anonymize'])),
	hold_keep	interval,		/* legal hold: rows kept, restricted, until retention_column + hold_keep */
	hold_purpose text REFERENCES privacy_guard.purpose (name),	/* ... visible only under this purpose */
	owner_rls	boolean NOT NULL,	/* row-level security before protect() */
	owner_force	boolean NOT NULL,	/* FORCE ROW LEVEL SECURITY before protect() */
	protected_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE privacy_guard.protected_table IS 'Tables registered with privacy_guard.protect()';

CREATE TABLE privacy_guard.protected_part (
	target		regclass PRIMARY KEY,
	root		regclass NOT NULL	/* a registered table (no foreign key: restores load tables in any order) */
);
COMMENT ON TABLE privacy_guard.protected_part IS 'Every table carrying a registered table''s policies: itself, its partitions and children, and those detached since';

CREATE TABLE privacy_guard.anonymizer (
	relid		regclass NOT NULL,
	column_name	name NOT NULL,
	method		text NOT NULL,	/* null, redact, hash, mask, generalize, or function */
	fn			text,			/* method function: its schema-qualified signature, resolved when used */
	PRIMARY KEY (relid, column_name)
);
COMMENT ON TABLE privacy_guard.anonymizer IS 'How anonymization treats a column of a protected table';

CREATE TABLE privacy_guard.erasure_request (
	id			bigint PRIMARY KEY
				DEFAULT pg_catalog.nextval('privacy_guard.erasure_request_id_seq'::pg_catalog.regclass),
	subject		text,			/* raw key: only while the request is open */
	subject_digest text NOT NULL,
	reason		text,
	requested_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	due			timestamptz NOT NULL,
	completed_at timestamptz,
	state		text NOT NULL DEFAULT 'pending'
				CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'done', 'restricted', 'blocked'])),
	counts		jsonb NOT NULL DEFAULT '{}',
	error		text,
	touched		oid[] NOT NULL DEFAULT '{}',	/* tables the erasure wrote to */
	unreachable_at timestamptz,	/* when all of them had been vacuumed since */
	erased_at	timestamptz,	/* first full erasure; done once no transaction in flight can commit or read the subject's rows */
	changed_xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	recipients_notified integer NOT NULL DEFAULT 0	/* notices written to recipients of the subject's data */
) WITH (fillfactor = 50);
/*
 * Half of each page is kept free for new versions of its rows: a round
 * rewrites every request it carries out, and later once more when its rows
 * are unreachable, and each new version stays on its row's page.  Filled
 * to the brim, the table had a little room on every page after a VACUUM,
 * new requests went one to a page, and a round carrying out many of them
 * wrote nearly every page of the table whole to the WAL after a
 * checkpoint.
 */
/*
 * Every receipt is found by its digest, by equality only: a hash index,
 * whose insert goes to one bucket page (a btree's goes to a random leaf
 * of a tree as large as all receipts kept, and splits it; closing a set of
 * requests writes an entry for each).
 */
CREATE INDEX erasure_request_digest ON privacy_guard.erasure_request USING hash (subject_digest);
/*
 * Receipts are kept for years (privacy_guard.log_retention), open requests
 * only until a round carries them out: the indexes a round reads by cover
 * the few rows it looks for, not every receipt ever kept.  Only open
 * requests have a subject key, and only their changes matter to the
 * consent cache (consent_cache.c, consent_changes.c; a request closed is
 * a tombstone in shared memory).
 */
CREATE INDEX erasure_request_subject ON privacy_guard.erasure_request (subject) WHERE subject IS NOT NULL;
CREATE INDEX erasure_request_changed ON privacy_guard.erasure_request (changed_xid) WHERE subject IS NOT NULL;
/* the requests a round takes up, in order (_forget_due) */
CREATE INDEX erasure_request_open ON privacy_guard.erasure_request (id) WHERE subject IS NOT NULL;
/* receipts waiting for their tables' vacuum, and receipts past log retention (_close_receipts) */
CREATE INDEX erasure_request_unreachable ON privacy_guard.erasure_request (completed_at)
	WHERE state OPERATOR(pg_catalog.=) 'done' AND unreachable_at IS NULL;
CREATE INDEX erasure_request_closed ON privacy_guard.erasure_request (completed_at)
	WHERE state OPERATOR(pg_catalog.=) 'done' AND unreachable_at IS NOT NULL;
COMMENT ON TABLE privacy_guard.erasure_request IS 'Erasure requests (GDPR Art. 17) and their receipts';

/*
 * What a receipt waits for: a vacuum of each table the erasure wrote to
 * that began after the erasure committed (one that began before cannot
 * remove its rows).  A round reads which tables are being vacuumed, then
 * their vacuum counts, and records per table: once the count reaches
 * vacuums, such a vacuum has ended for every transaction older than
 * taken_xmin (_close_receipts).  Operational state, like worker_round:
 * counts and transaction ids of this cluster, not dumped.
 */
CREATE TABLE privacy_guard.vacuum_mark (
	relid		oid NOT NULL,
	vacuums		bigint NOT NULL,
	taken_xmin	xid8 NOT NULL,
	PRIMARY KEY (relid, vacuums)
);
COMMENT ON TABLE privacy_guard.vacuum_mark IS 'Per table: the vacuum count by which a vacuum begun after older transactions ended has run';

CREATE TABLE privacy_guard.worker_round (
	onerow		boolean PRIMARY KEY DEFAULT true CHECK (onerow),
	rounds		bigint NOT NULL DEFAULT 0,
	last_round_at timestamptz,
	last_round_duration interval,
	last_result jsonb,
	rows_deleted bigint NOT NULL DEFAULT 0,	/* past retention */
	rows_anonymized bigint NOT NULL DEFAULT 0,
	rows_restricted bigint NOT NULL DEFAULT 0,	/* kept under a legal hold, as of the last round */
	requests_done bigint NOT NULL DEFAULT 0,
	errors		bigint NOT NULL DEFAULT 0,
	last_error	text,		/* an SQLSTATE and the table: never data */
	last_error_at timestamptz
);
COMMENT ON TABLE privacy_guard.worker_round IS 'What the background worker did in this database';

/*
 * One row per enforcement round in this database, by the worker or
 * run_maintenance(), kept for privacy_guard.history_retention (the rounds
 * prune it).  Counts, table names and SQLSTATEs only: never data.
 */
CREATE SEQUENCE privacy_guard.round_history_id_seq;
CREATE TABLE privacy_guard.round_history (
	id			bigint PRIMARY KEY
				DEFAULT pg_catalog.nextval('privacy_guard.round_history_id_seq'::pg_catalog.regclass),
	started_at	timestamptz NOT NULL,
	duration	interval NOT NULL,
	run_by		text NOT NULL CHECK (run_by OPERATOR(pg_catalog.=) ANY (ARRAY['worker', 'run_maintenance'])),
	tables		jsonb NOT NULL DEFAULT '{}',	/* per table: rows deleted, anonymized, restricted */
	rows_deleted bigint NOT NULL DEFAULT 0,
	rows_anonymized bigint NOT NULL DEFAULT 0,
	rows_restricted bigint NOT NULL DEFAULT 0,	/* kept under legal holds at the round's end */
	tagged_expired bigint NOT NULL DEFAULT 0,	/* tagged values past their retain-until */
	requests_done integer NOT NULL DEFAULT 0,
	requests_blocked integer NOT NULL DEFAULT 0,
	requests_restricted integer NOT NULL DEFAULT 0,
	errors		jsonb NOT NULL DEFAULT '{}'		/* SQLSTATE: how many */
);
CREATE INDEX round_history_started ON privacy_guard.round_history (started_at);
COMMENT ON TABLE privacy_guard.round_history IS 'One row per enforcement round in this database (worker and run_maintenance), kept for privacy_guard.history_retention';
ALTER SEQUENCE privacy_guard.round_history_id_seq OWNED BY privacy_guard.round_history.id;

CREATE TABLE privacy_guard.secret (
	onerow		boolean PRIMARY KEY DEFAULT true CHECK (onerow),
	key			bytea NOT NULL
);
COMMENT ON TABLE privacy_guard.secret IS 'Per-database key for subject digests; never leaves the database';

/* Dumps carry the registries; a restore keeps digests and consent history. */
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.purpose', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.purpose_role', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.consent_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.consent_state', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.protected_table', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.protected_part', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.anonymizer', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.erasure_request', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.secret', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.purpose_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.consent_ledger_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.erasure_request_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.round_history', '');
SELECT pg_catalog.pg_extension_config_dump('privacy_guard.round_history_id_seq', '');
ALTER SEQUENCE privacy_guard.purpose_id_seq OWNED BY privacy_guard.purpose.id;
ALTER SEQUENCE privacy_guard.consent_ledger_id_seq OWNED BY privacy_guard.consent_ledger.id;
ALTER SEQUENCE privacy_guard.erasure_request_id_seq OWNED BY privacy_guard.erasure_request.id;

REVOKE ALL ON ALL TABLES IN SCHEMA privacy_guard FROM PUBLIC;

