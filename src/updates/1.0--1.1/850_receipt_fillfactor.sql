/*
 * Half of each page of erasure_request is kept free for new versions of
 * its rows (see the table in tables.sql).  Pages already full keep their
 * rows; new requests go to pages with room.
 */
ALTER TABLE privacy_guard.erasure_request SET (fillfactor = 50);
