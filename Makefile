# privacy_guard -- PGXS build; "make installcheck" runs pg_regress and isolation
# against the running server (TEMP_INSTANCE=1: on throwaway instances), and TAP
EXTENSION   = privacy_guard
MODULE_big  = privacy_guard
OBJS        = src/privacy_guard.o src/guc.o src/registry.o src/consent_cache.o src/consent_changes.o \
              src/enforce.o src/digest.o src/ddl_guard.o \
              src/engine.o src/targets.o src/worker.o src/transparency.o src/audit.o \
              src/tagged_io.o src/tagged_access.o src/tagged_ops.o \
              src/tagged_erase.o src/tagged_default.o src/forgotten.o src/shared_store.o \
              src/parallel.o src/disclose.o src/purpose_scope.o src/import.o src/forget_sets.o
# The install script is assembled from the feature files in src/sql, in this
# order (later files use objects of earlier ones)
SQL_PARTS   = schema tables purposes consent import protect ddl_guard \
              forget anonymize erase legal_hold purge round access_log recipients disclose investigate worker \
              tagged_text tagged_date tagged_numeric tagged_jsonb tagged_types \
              tagged_erase invalidation register notice_text notice report check reading_view privileges
# Earlier versions' scripts are kept as they were released (src/updates); the
# update script from each to the next is assembled from the files of its folder
# in name order, one file per change
DATA        = src/updates/privacy_guard--1.0.sql
UPDATE_1_1  = $(sort $(wildcard $(srcdir)/src/updates/1.0--1.1/*.sql))
DATA_built  = privacy_guard--1.1.sql privacy_guard--1.0--1.1.sql
PGFILEDESC  = "privacy_guard - purposes, consent, retention and erasure enforced in the database"

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers

# pg_regress: its own throwaway instance (initdb, start, stop)
REGRESS      = setup purposes consent protect rules read_paths inheritance rls_coexist forget cache_consistency attacks_rules maintenance \
               purge_batches legal_hold register_notice subject_report check \
               attacks_privilege attacks_spoofing attacks_read_paths attacks_input attacks_erasure audit \
               tagged tagged_leaks tagged_erase \
               tagged_arrays attacks_arrays attacks_tagged attacks_transparency attacks_holds promises \
               attacks_outside \
               owner_sandbox two_phase tagged_parallel import round_history \
               purge_order erasure_prepared parallel_reads recipients attacks_disclosure reading_view purpose_scope notice_languages upgrade_safe \
               partition_retention import_bulk forget_sets
# PRELOAD=1 (default): the temp instances preload the library, so the suites
# test the shared consent store; PRELOAD=0: loaded on first use, private copies
PRELOAD ?= 1
ifeq ($(PRELOAD),0)
REGRESS_CONF = $(srcdir)/test/regress.conf
else
REGRESS_CONF = $(srcdir)/test/regress_preload.conf
endif
# TEMP_INSTANCE=1 (bin/test): pg_regress and the isolation tester start
# throwaway instances of their own, configured by REGRESS_CONF.  Otherwise
# (the PGXS convention) they run against the running server that PGHOST,
# PGPORT and PGUSER name, which must have privacy_guard installed; tests
# that server's settings cannot run are skipped, with the reason (see below).
TEMP_INSTANCE ?= 0
ifeq ($(TEMP_INSTANCE),1)
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=$(REGRESS_CONF)
ISOLATION_TEMP = --temp-instance=./tmp_check_iso --temp-config=$(REGRESS_CONF)
endif

# isolation tester: specs and expected output under test/
ISOLATION      = withdraw_visibility shared_store_visibility erase_locked purge_concurrency attacks_forget_reinsert attacks_cursor_withdraw \
                 tagged_visibility tagged_array_race attacks_purge_swap attacks_purge_stall time_basis \
                 restored_rows attacks_erasure_inflight attacks_tagged_copies \
                 import_visibility parallel_visibility partition_lock change_ring receipt_vacuum
ISOLATION_OPTS = --inputdir=$(srcdir)/test $(ISOLATION_TEMP)

# TAP: test/t/*.pl through prove, PostgreSQL::Test::Cluster builds its own nodes
TAP_TESTS   = 1
PROVE_TESTS = test/t/*.pl

# deterministic output regardless of the caller's LANG/LC_*
NO_LOCALE = 1
ENCODING  = UTF8

EXTRA_CLEAN = tmp_check_iso output_iso alone_diffs

# the default pg_config is written in one place, bin/cluster.sh
PG_CONFIG ?= $(shell sed -n 's/^PVG_PG_CONFIG_DEFAULT=//p' $(dir $(firstword $(MAKEFILE_LIST)))bin/cluster.sh)
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# an out-of-tree build (make -f SRCDIR/Makefile VPATH=SRCDIR, as Debian's
# pg_buildext runs it) writes its objects into a src/ of its own
ifdef VPATH
$(shell mkdir -p src)
endif

# Against a running server: the tests that prepare transactions need
# max_prepared_transactions > 0, and check's expected output knows the
# background worker only as absent (not preloaded) or switched off
# (privacy_guard.enabled = off).  While the preloaded library's worker runs
# enforcement rounds in every database, no test can run (its rounds would
# race the tests' own): set privacy_guard.enabled = off, or
# privacy_guard.databases to the databases it should serve.
NEEDS_PREPARED_REGRESS   = two_phase erasure_prepared
NEEDS_PREPARED_ISOLATION = attacks_erasure_inflight
NEEDS_WORKER_OFF_REGRESS = check
ifneq ($(TEMP_INSTANCE),1)
ifneq ($(filter installcheck,$(MAKECMDGOALS)),)
ifneq ($(strip $(REGRESS)$(ISOLATION)),)
SERVER_SETTINGS := $(shell '$(bindir)/psql' -X -A -t -q -F ' ' -d postgres -c "SELECT p, current_setting('max_prepared_transactions')::int > 0, p AND current_setting('privacy_guard.enabled', true) = 'on', coalesce(current_setting('privacy_guard.databases', true), '') = '', coalesce((SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'privacy_guard'), 'none') FROM (SELECT 'privacy_guard' = ANY (string_to_array(translate(current_setting('shared_preload_libraries'), ' ' || chr(34), ''), ',')) AS p) s" 2>&1 | tr '\n' ' ')
ifneq ($(strip $(words $(SERVER_SETTINGS)) $(filter-out t f,$(wordlist 1,4,$(SERVER_SETTINGS)))),5)
$(error make installcheck runs against the running server, and psql could not ask it for its settings: $(SERVER_SETTINGS) (start a server and point PGHOST/PGPORT/PGUSER at it, or run the tests on throwaway instances: make installcheck TEMP_INSTANCE=1))
endif
THIS_VERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" '$(srcdir)/privacy_guard.control')
ifneq ($(word 5,$(SERVER_SETTINGS)),$(THIS_VERSION))
$(error make installcheck: the server has privacy_guard version $(word 5,$(SERVER_SETTINGS)) installed, this source is $(THIS_VERSION): install this build where that server finds its extensions (make install, or the package) first)
endif
PRELOADED    := $(word 1,$(SERVER_SETTINGS))
HAS_PREPARED := $(word 2,$(SERVER_SETTINGS))
WORKER_ON    := $(word 3,$(SERVER_SETTINGS))
ALL_DATABASES := $(word 4,$(SERVER_SETTINGS))
ifeq ($(WORKER_ON)$(ALL_DATABASES),tt)
$(error make installcheck: the server preloads privacy_guard and its background worker runs enforcement rounds in every database, which would race the tests' own rounds; set privacy_guard.enabled = off or privacy_guard.databases (then reload), or run the tests on throwaway instances: make installcheck TEMP_INSTANCE=1)
endif
$(info make installcheck: against the running server; privacy_guard $(if $(filter t,$(PRELOADED)),preloaded (shared consent store),not preloaded (loaded on first use)))
ifeq ($(HAS_PREPARED),f)
SKIPPED_PREPARED := $(filter $(NEEDS_PREPARED_REGRESS) $(NEEDS_PREPARED_ISOLATION),$(REGRESS) $(ISOLATION))
override REGRESS   := $(filter-out $(NEEDS_PREPARED_REGRESS),$(REGRESS))
override ISOLATION := $(filter-out $(NEEDS_PREPARED_ISOLATION),$(ISOLATION))
ifneq ($(SKIPPED_PREPARED),)
$(info make installcheck: skipped, because the server has max_prepared_transactions = 0: $(SKIPPED_PREPARED))
endif
endif
ifeq ($(WORKER_ON),t)
SKIPPED_WORKER := $(filter $(NEEDS_WORKER_OFF_REGRESS),$(REGRESS))
override REGRESS := $(filter-out $(NEEDS_WORKER_OFF_REGRESS),$(REGRESS))
ifneq ($(SKIPPED_WORKER),)
$(info make installcheck: skipped, because the background worker is on (privacy_guard.enabled): $(SKIPPED_WORKER))
endif
endif
endif
endif
endif

privacy_guard--1.1.sql: $(addprefix $(srcdir)/src/sql/,$(addsuffix .sql,$(SQL_PARTS)))
	cat $^ > $@

privacy_guard--1.0--1.1.sql: $(UPDATE_1_1)
	cat $^ > $@

.PHONY: pgtap bench demo check-alone
pgtap:
	PG_CONFIG=$(PG_CONFIG) $(srcdir)/test/run_pgtap.sh

# every pg_regress file alone after setup, each in its own temporary instance
check-alone:
	PG_CONFIG=$(PG_CONFIG) PRELOAD=$(PRELOAD) $(srcdir)/test/check_alone.sh $(filter-out setup,$(REGRESS))

# every object depends on the shared headers (PGXS tracks no header dependencies)
$(OBJS): src/privacy_guard.h src/subject_set.h src/tagged.h
