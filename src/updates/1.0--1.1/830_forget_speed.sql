
/*
 * Forget requests in bulk, cheaper around the erasure: a round finds the
 * open requests and the receipts it closes or drops through partial
 * indexes, however many receipts are kept (_close_receipts, in 840).
 * (The statement-level notices trigger and the sets' faster receipts are
 * in the pieces that create them, 300 and 800.)
 */
/* the indexes a round reads by cover open requests, not every receipt kept */
DROP INDEX privacy_guard.erasure_request_subject;
CREATE INDEX erasure_request_subject ON privacy_guard.erasure_request (subject) WHERE subject IS NOT NULL;
CREATE INDEX erasure_request_open ON privacy_guard.erasure_request (id) WHERE subject IS NOT NULL;
CREATE INDEX erasure_request_unreachable ON privacy_guard.erasure_request (completed_at)
	WHERE state OPERATOR(pg_catalog.=) 'done' AND unreachable_at IS NULL;
CREATE INDEX erasure_request_closed ON privacy_guard.erasure_request (completed_at)
	WHERE state OPERATOR(pg_catalog.=) 'done' AND unreachable_at IS NOT NULL;
/* closing a request writes no entry of the consent cache's index, and a cheap one of the digest's */
DROP INDEX privacy_guard.erasure_request_digest;
CREATE INDEX erasure_request_digest ON privacy_guard.erasure_request USING hash (subject_digest);
DROP INDEX privacy_guard.erasure_request_changed;
CREATE INDEX erasure_request_changed ON privacy_guard.erasure_request (changed_xid) WHERE subject IS NOT NULL;
