/*-------------------------------------------------------------------------
 *
 * privacy_guard.h
 *	  Declarations shared by privacy_guard's source files.
 *
 * Each backend keeps two caches, both rebuilt lazily:
 *	- the registry: purposes, role authorisations and protected tables;
 *	- the consent store: current consents and objections, and the subjects
 *	  with a forget request, from which per-purpose subject sets are derived
 *	  (when preloaded, the sets live in shared memory and the backend keeps
 *	  only the changes made since they were read: shared_store.c).
 * Writes to privacy_guard's tables fire a statement trigger that queues a
 * relcache invalidation; every backend receives it at its next statement
 * (see pvg_cache_accept) and marks the matching cache stale (registry) or
 * changed (consent store: patched with just the changed subjects).
 * Nothing is reloaded per transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PRIVACY_GUARD_H
#define PRIVACY_GUARD_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/palloc.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

/* legal bases of processing (GDPR Art. 6) */
typedef enum PvgBasis
{
	PVG_BASIS_CONSENT,
	PVG_BASIS_CONTRACT,
	PVG_BASIS_LEGAL_OBLIGATION,
	PVG_BASIS_VITAL_INTERESTS,
	PVG_BASIS_PUBLIC_TASK,
	PVG_BASIS_LEGITIMATE_INTERESTS
} PvgBasis;

typedef struct PvgPurpose
{
	char	   *name;
	int			parent;			/* index into registry purposes, or -1 */
	PvgBasis	basis;
	int32		id;				/* privacy_guard.purpose.id: what tags store */
} PvgPurpose;

typedef struct PvgTable
{
	Oid			relid;
	int			npurposes;
	int		   *purposes;		/* indexes into registry purposes */
	bool		has_retention;
	Interval	retention;
	bool		anonymize_on_expiry;
	int			hold_purpose;	/* legal hold: its purpose's index, or -1 */
	Interval	hold_keep;		/* ... rows kept until retention column + this */
	char	   *subject_column; /* for a tagged column's default tag */
	char	   *retention_column;	/* NULL when none */
} PvgTable;

typedef struct PvgRoleAuth
{
	Oid			roleid;
	int			purpose;		/* index into registry purposes */
} PvgRoleAuth;

typedef struct PvgRegistry
{
	int			npurposes;
	PvgPurpose *purposes;
	int			ntables;
	PvgTable   *tables;			/* sorted by relid */
	int			nauth;
	PvgRoleAuth *auth;
	uint64		generation;		/* changes whenever the registry is reloaded */
	Oid			store_relids[2];	/* consent_state, erasure_request */
} PvgRegistry;

/* how a subject column's values are looked up in a subject set */
typedef enum PvgKeyKind
{
	PVG_KEY_INT,				/* int2, int4, int8: by value */
	PVG_KEY_TEXT				/* everything else: by its text form */
} PvgKeyKind;

typedef struct PvgSubjectSet PvgSubjectSet;
typedef struct PvgAuditRead PvgAuditRead;

/* audit.c */
extern void pvg_audit_init(void);
extern PvgAuditRead *pvg_audit_begin(Oid relid, const char *purpose, MemoryContext cxt);
extern void pvg_audit_row(PvgAuditRead *r);
extern void pvg_audit_row_int(PvgAuditRead *r, int64 subject);
extern void pvg_audit_row_text(PvgAuditRead *r, const char *subject, int len);

/* engine.c: code of a table's owner runs as that owner, never as ours */
typedef struct PvgAsTableOwner
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	bool		guard_was_off;
} PvgAsTableOwner;
extern void pvg_as_table_owner_begin(Oid owner, const char *search_path,
									 PvgAsTableOwner *st);
extern void pvg_as_table_owner_end(PvgAsTableOwner *st);
extern int	pvg_next_batch(int batch, long took_ms);

/* ddl_guard.c */
extern void pvg_ddl_guard_init(void);
extern bool pvg_guard_hold(void);
extern void pvg_guard_restore(bool off);

/* guc.c */
extern char *pvg_purpose;
extern bool pvg_enabled;
extern int	pvg_naptime;
extern int	pvg_batch_size;
extern int	pvg_batch_delay;
extern int	pvg_log_retention;
extern int	pvg_engine_time_limit;
extern bool pvg_audit;
extern int	pvg_audit_retention;
extern int	pvg_audit_max_entries;
extern int	pvg_shared_store_size;
extern int	pvg_max_workers;
extern int	pvg_history_retention;
extern char *pvg_databases;
extern void pvg_guc_init(void);

/* purpose_scope.c */
#define PVG_SCOPE_SESSION		0
#define PVG_SCOPE_TRANSACTION	1
extern int	pvg_purpose_scope;
extern void pvg_purpose_scope_init(void);
extern void pvg_purpose_assign(const char *newval, void *extra);
extern bool pvg_purpose_is_session_level(void);
extern bool pvg_purpose_refused(void);

/* registry.c */
extern void pvg_cache_init(void);
extern void pvg_cache_accept(void);
extern PvgRegistry *pvg_registry(void);
extern PvgTable *pvg_registry_table(PvgRegistry *reg, Oid relid);
extern int	pvg_registry_purpose(PvgRegistry *reg, const char *name);
extern bool pvg_purpose_within(PvgRegistry *reg, int purpose, int ancestor);
extern bool pvg_purpose_authorised(PvgRegistry *reg, int purpose, int authorised);
/* SPI as the extension's owner, for its own tables (never a table owner's code) */
extern void pvg_as_extension_owner_begin(Oid *save_userid, int *save_sec);
extern void pvg_as_extension_owner_end(Oid save_userid, int save_sec);
extern Snapshot pvg_load_snapshot(void);
extern bool pvg_load_is_current(void);

/*
 * Which statement a load made in parallel mode serves (it is never
 * current, see pvg_load_is_current): it is reused until that statement
 * ends or an invalidation arrives, instead of being made again for every
 * value.
 */
typedef struct PvgLoadStamp
{
	bool		valid;
	LocalTransactionId lxid;
	TimestampTz stmt_start;
} PvgLoadStamp;

extern void pvg_load_stamp_set(PvgLoadStamp *stamp);
extern bool pvg_load_stamp_serves(const PvgLoadStamp *stamp);
extern struct _SPI_plan *pvg_spi_plan(const char *sql, int nargs, Oid *argtypes);
extern uint64 pvg_spi_read(const char *sql);
extern uint64 pvg_spi_read_snapshot(const char *sql, int nargs, Oid *argtypes, Datum *args,
									 Snapshot snap);
extern void pvg_retire_context(MemoryContext cxt);

/* consent_cache.c */
extern void pvg_consent_mark_stale(void);
extern void pvg_consent_mark_changed(void);
extern void pvg_consent_abort(void);
extern void pvg_consent_end_xact(void);
extern void pvg_consent_note_full_change(void);
extern PvgSubjectSet *pvg_subject_set(PvgRegistry *reg, int purpose, PvgKeyKind kind);
extern bool pvg_parse_canonical_int(const char *s, int len, int64 *result);
extern uint64 pvg_spi_read_subject_states(Datum subjects, Snapshot snap);

/* forgotten.c */
extern void pvg_forgotten_init(void);
extern bool pvg_subject_forgotten_here(const char *subject, int len);
/*
 * A record of the change ring (shared_store.c, consent_changes.c): the
 * state of one subject after a committed change, or word that readers
 * must query the tables for one.
 */
#define PVG_CHANGE_KEY_LEN 64
#define PVG_CHANGE_DATA_LEN 128

typedef struct PvgChangeRec
{
	TransactionId xid;			/* of the writing transaction */
	bool		query;			/* no state here: readers must query */
	uint16		keylen;
	uint16		datalen;
	TimestampTz forget_due;		/* DT_NOEND when no open request */
	char		key[PVG_CHANGE_KEY_LEN];
	char		data[PVG_CHANGE_DATA_LEN];	/* grants: status, name length, valid_until, name */
} PvgChangeRec;

/* consent_changes.c */
extern void pvg_changes_note_write(bool query);
extern bool pvg_changes_written(void);
extern void pvg_changes_note_removed(const char *subject, int len);
extern void pvg_changes_pre_commit(void);
extern void pvg_changes_commit(void);
extern void pvg_changes_prepare(void);
extern void pvg_changes_end_xact(void);

/* shared_store.c (the rest is in subject_set.h) */
extern void pvg_shared_init(void);
extern bool pvg_shared_changes_ready(void);
extern uint64 pvg_shared_changes_head(void);
extern void pvg_shared_changes_publish(const PvgChangeRec *recs, int n);
extern int	pvg_shared_changes_read(uint64 from, uint64 *to, PvgChangeRec **recs);
extern bool pvg_shared_changes_clear(uint64 from);
extern void pvg_shared_publishing(TransactionId xid);
extern int	pvg_shared_publishing_xids(TransactionId **xids);
extern void pvg_shared_changes_stop(void);
extern void pvg_shared_note_full_change(void);
extern bool pvg_shared_note_removed(const char *subject, int len);
extern void pvg_shared_end_xact(bool commit, bool prepare);
extern bool pvg_shared_view_publish(const char *data, Size len);
extern void pvg_shared_view_clear(void);
extern char *pvg_shared_view_fetch(Size *len);

/* worker.c */
extern void pvg_worker_init(void);

/* parallel.c */
extern void pvg_parallel_init(void);
extern void pvg_parallel_end_xact(bool commit);
extern Snapshot pvg_parallel_snapshot(void);
extern bool pvg_parallel_purpose_refused(void);

/* enforce.c */
extern int	pvg_check_statement(PvgRegistry *reg, PvgTable *table, Oid relid);
extern bool pvg_statement_allowed(PvgRegistry *reg, PvgTable *table, int purpose);

#endif							/* PRIVACY_GUARD_H */
