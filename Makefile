# privacy_guard -- PGXS build; "make installcheck" runs pg_regress, isolation and TAP
EXTENSION   = privacy_guard
MODULE_big  = privacy_guard
OBJS        = src/privacy_guard.o src/guc.o src/registry.o src/consent_cache.o \
              src/enforce.o src/digest.o src/ddl_guard.o \
              src/engine.o src/targets.o src/worker.o src/transparency.o src/audit.o \
              src/tagged_io.o src/tagged_ops.o src/forgotten.o src/shared_store.o
# The install script is assembled from the feature files in src/sql, in this
# order (later files use objects of earlier ones)
SQL_PARTS   = schema tables c_functions purposes consent import protect ddl_guard \
              forget anonymise erase legal_hold purge round access_log worker \
              tagged_types tagged_erase invalidation register notice report check \
              privileges
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
               purge_order erasure_prepared
# PRELOAD=1 (default): the temp instances preload the library, so the suites
# test the shared consent store; PRELOAD=0: loaded on first use, private copies
PRELOAD ?= 1
ifeq ($(PRELOAD),0)
REGRESS_CONF = $(srcdir)/test/regress.conf
else
REGRESS_CONF = $(srcdir)/test/regress_preload.conf
endif
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=$(REGRESS_CONF)

# isolation tester: specs and expected output under test/
ISOLATION      = withdraw_visibility shared_store_visibility erase_locked purge_concurrency attacks_forget_reinsert attacks_cursor_withdraw \
                 tagged_visibility tagged_array_race attacks_purge_swap attacks_purge_stall time_basis \
                 restored_rows attacks_erasure_inflight attacks_tagged_copies \
                 import_visibility
ISOLATION_OPTS = --inputdir=$(srcdir)/test --temp-instance=./tmp_check_iso \
                 --temp-config=$(REGRESS_CONF)

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
