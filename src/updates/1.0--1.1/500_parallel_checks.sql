
/* Row checks run in parallel workers too, with their leader's view of the consents. */
ALTER FUNCTION privacy_guard.row_visible(regclass, anyelement) PARALLEL SAFE;
ALTER FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamptz) PARALLEL SAFE;
ALTER FUNCTION privacy_guard.row_visible(regclass, anyelement, timestamp) PARALLEL SAFE;
ALTER FUNCTION privacy_guard.row_visible(regclass, anyelement, date) PARALLEL SAFE;
