/* The prepared day key (sigv4_mac_new / sigv4_verify_mac) answers exactly
 * as sigv4_verify does with the raw key: the router's fast path must not
 * change a single verdict. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"

static void same_verdicts(void **state)
{
	(void)state;
	char amz[17], hash[65];
	sigv4_format_amz_date(1764590400, amz);
	sigv4_sha256_hex("payload", 7, hash);
	struct sigv4_header h[] = {
		{ "host", 4, "127.0.0.1:8080", 14 },
		{ "x-amz-date", 10, amz, 16 },
	};
	struct sigv4_request req = { "POST", "/endpoints/e/invocations", h, 2, hash };
	struct sigv4_auth auth = { 0 };
	snprintf(auth.key_id, sizeof(auth.key_id), "BRTHKEY0000000000001");
	memcpy(auth.date, amz, 8);
	snprintf(auth.region, sizeof(auth.region), "us-east-1");
	snprintf(auth.service, sizeof(auth.service), "sagemaker");
	snprintf(auth.signed_headers, sizeof(auth.signed_headers), "host;x-amz-date");
	memcpy(auth.amz_date, amz, 17);
	unsigned char key[SIGV4_KEY_LEN];
	sigv4_signing_key("a secret", auth.date, "us-east-1", "sagemaker", key);
	struct berth_buf sts = BERTH_BUF_INIT;
	struct sigv4_error e;
	assert_int_equal(sigv4_string_to_sign(&req, &auth, &sts, &e), SIGV4_OK);
	unsigned char mac[32];
	unsigned int n = 0;
	HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)sts.data, sts.len, mac, &n);
	buf_free(&sts);
	for (int i = 0; i < 32; i++)
		snprintf(auth.signature + 2 * i, 3, "%02x", mac[i]);

	struct sigv4_mac *m = sigv4_mac_new(key);
	assert_non_null(m);
	for (int round = 0; round < 3; round++) { /* the prepared state is reused */
		assert_int_equal(sigv4_verify(&req, &auth, key, &e), SIGV4_OK);
		assert_int_equal(sigv4_verify_mac(&req, &auth, m, &e), SIGV4_OK);
	}
	auth.signature[10] = auth.signature[10] == '0' ? '1' : '0';
	assert_int_equal(sigv4_verify(&req, &auth, key, &e), SIGV4_INVALID);
	assert_int_equal(sigv4_verify_mac(&req, &auth, m, &e), SIGV4_INVALID);
	assert_string_equal(e.message, "The request signature we calculated does not match the signature you provided. "
				       "Check your AWS Secret Access Key and signing method. Consult the service "
				       "documentation for details.");
	auth.signature[10] = auth.signature[10] == '0' ? '1' : '0';
	req.payload_hash = SIGV4_EMPTY_PAYLOAD_HASH; /* the body changed */
	assert_int_equal(sigv4_verify(&req, &auth, key, &e), SIGV4_INVALID);
	assert_int_equal(sigv4_verify_mac(&req, &auth, m, &e), SIGV4_INVALID);
	sigv4_mac_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_verdicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
