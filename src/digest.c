/*-------------------------------------------------------------------------
 *
 * digest.c
 *	  Keyed digests of subject keys and the random key behind them.
 *
 * A receipt must show that a subject was erased without keeping who the
 * subject was: it stores HMAC-SHA-256(per-database secret, subject key).
 * Without the secret the digest cannot be tested against guessed keys.
 *
 *-------------------------------------------------------------------------
 */
#include "privacy_guard.h"

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(pvg_random_bytes);
PG_FUNCTION_INFO_V1(pvg_hmac);

/* _random_bytes(n) -> n cryptographically strong random bytes */
Datum
pvg_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *result;

	if (n < 1 || n > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of random bytes must be between 1 and 1024")));
	result = palloc(VARHDRSZ + n);
	SET_VARSIZE(result, VARHDRSZ + n);
	if (!pg_strong_random(VARDATA(result), n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	PG_RETURN_BYTEA_P(result);
}

/* _hmac(key, message) -> hex HMAC-SHA-256 */
Datum
pvg_hmac(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	text	   *msg = PG_GETARG_TEXT_PP(1);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		elog(ERROR, "out of memory creating an HMAC context");
	if (pg_hmac_init(ctx, (uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) < 0 ||
		pg_hmac_update(ctx, (uint8 *) VARDATA_ANY(msg), VARSIZE_ANY_EXHDR(msg)) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute HMAC: %s", err);
	}
	pg_hmac_free(ctx);
	hex_encode((const char *) mac, sizeof(mac), hex);
	hex[sizeof(hex) - 1] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
