/* sigv4.c — see sigv4.h.
 *
 * The canonical request is built the way botocore's SigV4Auth builds it
 * (botocore/auth.py): the wire path with dot segments and empty segments
 * removed, then percent-encoded again (safe "/~"); the query's pairs
 * decoded, encoded with safe "-_.~" and sorted by name then value; each
 * signed header's values trimmed, runs of white space folded, repeated
 * headers joined by ','. Every value from the client is read within the
 * length it came with: header values are not NUL-terminated. */
#include "sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ALGORITHM_PREFIX SIGV4_ALGORITHM " "
#define SHOWN_MAX 256 /* bytes of a client's value quoted back in a message */
#define SCOPE_PART_MAX 63

/* ---- errors ---------------------------------------------------------------- */

const char *sigv4_error_type(enum sigv4_status status)
{
	switch (status) {
	case SIGV4_OK:
		return NULL;
	case SIGV4_MISSING:
		return "MissingAuthenticationTokenException";
	case SIGV4_INCOMPLETE:
		return "IncompleteSignatureException";
	case SIGV4_UNKNOWN_KEY:
		return "UnrecognizedClientException";
	case SIGV4_INVALID:
		return "InvalidSignatureException";
	case SIGV4_DENIED:
		return "AccessDeniedException";
	}
	return "InvalidSignatureException";
}

int sigv4_error_http_status(enum sigv4_status status, bool runtime)
{
	switch (status) {
	case SIGV4_OK:
		return 200;
	case SIGV4_INCOMPLETE:
		return 400;
	case SIGV4_DENIED:
		/* SageMaker's JSON 1.1 API answers AccessDenied with 400, the
		 * runtime's REST API with 403 (docs/contract.md §1) */
		return runtime ? 403 : 400;
	case SIGV4_MISSING:
	case SIGV4_UNKNOWN_KEY:
	case SIGV4_INVALID:
		return 403;
	}
	return 403;
}

__attribute__((format(printf, 3, 4))) static enum sigv4_status error_set(struct sigv4_error *err,
									  enum sigv4_status status,
									  const char *fmt, ...)
{
	if (err == NULL)
		return status;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	if (n < 0)
		err->message[0] = '\0';
	err->status = status;
	return status;
}

static const char mismatch_message[] =
	"The request signature we calculated does not match the signature you provided. Check your AWS Secret "
	"Access Key and signing method. Consult the service documentation for details.";

void sigv4_error_unknown_key(struct sigv4_error *err)
{
	error_set(err, SIGV4_UNKNOWN_KEY, "The security token included in the request is invalid.");
}

/* A client's value as it may be quoted back: at most SHOWN_MAX bytes then
 * "...", bytes that are not printable ASCII as '?' (the message becomes
 * JSON and a log line). */
struct shown {
	char text[SHOWN_MAX + 4];
};

static void shown_set(struct shown *s, const char *value, size_t len)
{
	size_t n = len > SHOWN_MAX ? SHOWN_MAX : len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		s->text[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (len > SHOWN_MAX)
		memcpy(s->text + n, "...", 3), n += 3;
	s->text[n] = '\0';
}

/* ---- hashing ---------------------------------------------------------------- */

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

struct sigv4_hasher {
	EVP_MD_CTX *ctx;
	EVP_MD *md; /* fetched once: EVP_sha256() would look it up at every init */
};

struct sigv4_hasher *sigv4_hasher_new(void)
{
	struct sigv4_hasher *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (h->ctx == NULL || h->md == NULL || EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1) {
		sigv4_hasher_free(h);
		errno = ENOMEM;
		return NULL;
	}
	return h;
}

void sigv4_hasher_free(struct sigv4_hasher *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h);
}

void sigv4_hasher_reset(struct sigv4_hasher *h)
{
	EVP_DigestInit_ex(h->ctx, h->md, NULL);
}

void sigv4_hasher_update(struct sigv4_hasher *h, const void *data, size_t len)
{
	if (len > 0)
		EVP_DigestUpdate(h->ctx, data, len);
}

void sigv4_hasher_final_hex(struct sigv4_hasher *h, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	hex_encode(md, 32, out);
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

static void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 0;
	HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
}

void sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
		       unsigned char key[SIGV4_KEY_LEN])
{
	/* HMAC's first key is "AWS4" + secret. A key longer than SHA-256's
	 * 64-byte block is replaced by its digest (RFC 2104), so a long
	 * secret is hashed in two pieces instead of being copied. */
	unsigned char first[64];
	size_t first_len, secret_len = strlen(secret);
	if (4 + secret_len <= sizeof(first)) {
		memcpy(first, "AWS4", 4);
		memcpy(first + 4, secret, secret_len);
		first_len = 4 + secret_len;
	} else {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		unsigned int n = 0;
		if (ctx == NULL)
			abort(); /* a few bytes; nothing sensible to answer */
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		EVP_DigestUpdate(ctx, "AWS4", 4);
		EVP_DigestUpdate(ctx, secret, secret_len);
		EVP_DigestFinal_ex(ctx, first, &n);
		EVP_MD_CTX_free(ctx);
		first_len = n;
	}
	unsigned char k_date[32], k_region[32], k_service[32];
	hmac_sha256(first, first_len, date, strlen(date), k_date);
	hmac_sha256(k_date, sizeof(k_date), region, strlen(region), k_region);
	hmac_sha256(k_region, sizeof(k_region), service, strlen(service), k_service);
	hmac_sha256(k_service, sizeof(k_service), SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR), key);
	OPENSSL_cleanse(first, sizeof(first));
	OPENSSL_cleanse(k_date, sizeof(k_date));
	OPENSSL_cleanse(k_region, sizeof(k_region));
	OPENSSL_cleanse(k_service, sizeof(k_service));
}

enum sigv4_status sigv4_check(const unsigned char key[SIGV4_KEY_LEN], const char *string_to_sign, size_t len,
			      const char *signature_hex, struct sigv4_error *err)
{
	unsigned char mac[32];
	char mac_hex[65];
	hmac_sha256(key, SIGV4_KEY_LEN, string_to_sign, len, mac);
	hex_encode(mac, sizeof(mac), mac_hex);
	bool same = signature_hex != NULL && strnlen(signature_hex, 65) == 64 &&
		    CRYPTO_memcmp(mac_hex, signature_hex, 64) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(mac_hex, sizeof(mac_hex));
	if (!same)
		return error_set(err, SIGV4_INVALID, "%s", mismatch_message);
	return SIGV4_OK;
}

/* ---- dates ------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (the
 * civil-calendar algorithms: eras of 400 years). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

static bool digits_value(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool sigv4_parse_amz_date(const char *text, size_t len, int64_t *out)
{
	int year, month, day, hour, minute, second;
	if (len != 16 || text[8] != 'T' || text[15] != 'Z')
		return false;
	if (!digits_value(text, 4, &year) || !digits_value(text + 4, 2, &month) ||
	    !digits_value(text + 6, 2, &day) || !digits_value(text + 9, 2, &hour) ||
	    !digits_value(text + 11, 2, &minute) || !digits_value(text + 13, 2, &second))
		return false;
	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 ||
	    second > 59)
		return false;
	*out = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
	return true;
}

void sigv4_format_amz_date(int64_t t, char out[17])
{
	/* four-digit years only: 0000-01-01 .. 9999-12-31 */
	const int64_t lo = days_from_civil(0, 1, 1) * 86400, hi = days_from_civil(10000, 1, 1) * 86400 - 1;
	if (t < lo)
		t = lo;
	if (t > hi)
		t = hi;
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t secs = t - days * 86400;
	int64_t year;
	int month, day;
	civil_from_days(days, &year, &month, &day);
	const unsigned fields[6] = { (unsigned)year, (unsigned)month, (unsigned)day, (unsigned)(secs / 3600),
				     (unsigned)(secs / 60 % 60), (unsigned)(secs % 60) };
	char *o = out;
	for (int f = 0; f < 6; f++) {
		unsigned v = fields[f], width = f == 0 ? 4 : 2;
		for (unsigned i = width; i > 0; i--, v /= 10)
			o[i - 1] = (char)('0' + v % 10);
		o += width;
		if (f == 2)
			*o++ = 'T';
	}
	*o++ = 'Z';
	*o = '\0';
}

/* "Sun, 30 Aug 2015 12:36:00 GMT": RFC 9110's IMF-fixdate, the Date header
 * SigV4 allows instead of X-Amz-Date (botocore writes the zone "-0000"). */
static bool parse_http_date(const char *s, size_t len, int64_t *out)
{
	static const char days[] = "MonTueWedThuFriSatSun", months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	if (len != 29 && len != 31)
		return false;
	if (s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
	    s[22] != ':' || s[25] != ' ')
		return false;
	if (!(len == 29 ? memcmp(s + 26, "GMT", 3) == 0
			: memcmp(s + 26, "+0000", 5) == 0 || memcmp(s + 26, "-0000", 5) == 0))
		return false;
	int day = -1, month = -1;
	for (int i = 0; i < 7; i++)
		if (memcmp(s, days + 3 * i, 3) == 0)
			day = i;
	for (int i = 0; i < 12; i++)
		if (memcmp(s + 8, months + 3 * i, 3) == 0)
			month = i + 1;
	if (day < 0 || month < 0)
		return false;
	/* the same instant in the basic format, checked by its parser */
	char iso[16] = { s[12], s[13], s[14], s[15], (char)('0' + month / 10), (char)('0' + month % 10), s[5], s[6],
			 'T', s[17], s[18], s[20], s[21], s[23], s[24], 'Z' };
	return sigv4_parse_amz_date(iso, sizeof(iso), out);
}

/* ---- step 1: the Authorization header --------------------------------------- */

static bool header_is(const struct sigv4_header *h, const char *lower_name)
{
	size_t n = strlen(lower_name);
	return h->name_len == n && strncasecmp(h->name, lower_name, n) == 0;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void trim_ows(const char **s, size_t *len)
{
	while (*len > 0 && is_ows(**s))
		(*s)++, (*len)--;
	while (*len > 0 && is_ows((*s)[*len - 1]))
		(*len)--;
}

static bool copy_part(char *dst, size_t dst_size, const char *src, size_t len)
{
	if (len == 0 || len >= dst_size)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

static bool is_scope_char(char c)
{
	return c > 0x20 && c < 0x7f;
}

/* Credential=KEY/YYYYMMDD/REGION/SERVICE/TERMINATOR, five non-empty parts. */
static bool parse_credential(const char *v, size_t len, struct sigv4_auth *out, char terminator[SCOPE_PART_MAX + 1])
{
	const char *part[5];
	size_t part_len[5], n = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && v[i] != '/') {
			if (!is_scope_char(v[i]))
				return false;
			continue;
		}
		if (n == 5)
			return false;
		part[n] = v + start;
		part_len[n++] = i - start;
		start = i + 1;
	}
	if (n != 5)
		return false;
	for (size_t i = 0; i < part_len[0]; i++)
		if (!isalnum((unsigned char)part[0][i]))
			return false;
	int ignored;
	return copy_part(out->key_id, sizeof(out->key_id), part[0], part_len[0]) && part_len[1] == 8 &&
	       digits_value(part[1], 8, &ignored) && copy_part(out->date, sizeof(out->date), part[1], 8) &&
	       copy_part(out->region, sizeof(out->region), part[2], part_len[2]) &&
	       copy_part(out->service, sizeof(out->service), part[3], part_len[3]) &&
	       copy_part(terminator, SCOPE_PART_MAX + 1, part[4], part_len[4]);
}

static bool is_header_name_char(char c)
{
	/* RFC 9110 tchar, lower-case only */
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* SignedHeaders=a;b;c: lower-case names, sorted, no repeats, at most
 * SIGV4_MAX_SIGNED_HEADERS. */
static bool parse_signed_headers(const char *v, size_t len, struct sigv4_auth *out)
{
	if (!copy_part(out->signed_headers, sizeof(out->signed_headers), v, len))
		return false;
	const char *prev = NULL;
	size_t prev_len = 0, n = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && v[i] != ';') {
			if (!is_header_name_char(v[i]))
				return false;
			continue;
		}
		size_t name_len = i - start;
		if (name_len == 0 || ++n > SIGV4_MAX_SIGNED_HEADERS)
			return false;
		if (prev != NULL) {
			int c = memcmp(prev, v + start, prev_len < name_len ? prev_len : name_len);
			if (c > 0 || (c == 0 && prev_len >= name_len))
				return false;
		}
		prev = v + start;
		prev_len = name_len;
		start = i + 1;
	}
	return true;
}

static bool parse_signature(const char *v, size_t len, struct sigv4_auth *out)
{
	if (len != 64)
		return false;
	for (size_t i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)v[i]))
			return false;
		out->signature[i] = (char)tolower((unsigned char)v[i]);
	}
	out->signature[64] = '\0';
	return true;
}

enum part_state { PART_ABSENT, PART_OK, PART_BAD };

enum sigv4_status sigv4_parse(const struct sigv4_request *req, const char *region, const char *service, int64_t now,
			      struct sigv4_auth *out, struct sigv4_error *err)
{
	memset(out, 0, sizeof(*out));
	const struct sigv4_header *authorization = NULL, *amz_date = NULL, *http_date = NULL;
	size_t n_authorization = 0, n_amz_date = 0, n_http_date = 0;
	for (size_t i = 0; i < req->n_headers; i++) {
		if (header_is(&req->headers[i], "authorization")) {
			if (n_authorization++ == 0)
				authorization = &req->headers[i];
		} else if (header_is(&req->headers[i], "x-amz-date")) {
			if (n_amz_date++ == 0)
				amz_date = &req->headers[i];
		} else if (header_is(&req->headers[i], "date")) {
			if (n_http_date++ == 0)
				http_date = &req->headers[i];
		}
	}
	if (authorization == NULL)
		return error_set(err, SIGV4_MISSING, "Missing Authentication Token");
	if (n_authorization > 1)
		return error_set(err, SIGV4_INCOMPLETE, "Only one Authorization header may be sent; this request has %zu.",
				 n_authorization);
	if (authorization->value_len > SIGV4_MAX_AUTHORIZATION)
		return error_set(err, SIGV4_INCOMPLETE, "Authorization header of %zu bytes exceeds the limit of %d bytes.",
				 authorization->value_len, SIGV4_MAX_AUTHORIZATION);

	struct shown shown_authorization; /* filled only to answer a refusal */
	const char *v = authorization->value;
	size_t len = authorization->value_len;
	trim_ows(&v, &len);
	size_t prefix = strlen(ALGORITHM_PREFIX);
	/* "AWS4-HMAC-SHA256" alone (its blank trimmed): the right algorithm,
	 * every part missing */
	bool algorithm_alone = len == prefix - 1 && memcmp(v, SIGV4_ALGORITHM, prefix - 1) == 0;
	if (!algorithm_alone && (len < prefix || memcmp(v, ALGORITHM_PREFIX, prefix) != 0)) {
		shown_set(&shown_authorization, authorization->value, authorization->value_len);
		return error_set(err, SIGV4_INCOMPLETE,
				 "Authorization header requires '" SIGV4_ALGORITHM "' as its algorithm. Authorization=%s",
				 shown_authorization.text);
	}

	/* Credential=…, SignedHeaders=…, Signature=… in any order; other
	 * components are ignored, a repeated one is garbled */
	enum part_state credential = PART_ABSENT, signed_headers = PART_ABSENT, signature = PART_ABSENT;
	char terminator[SCOPE_PART_MAX + 1] = "";
	size_t pos = prefix;
	while (pos < len) {
		size_t end = pos;
		while (end < len && v[end] != ',')
			end++;
		const char *c = v + pos;
		size_t c_len = end - pos;
		trim_ows(&c, &c_len);
		pos = end + 1;
		const char *eq = memchr(c, '=', c_len);
		if (eq == NULL)
			continue;
		size_t name_len = (size_t)(eq - c), value_len = c_len - name_len - 1;
		const char *value = eq + 1;
		enum part_state *state = NULL;
		bool ok = false;
		if (name_len == 10 && memcmp(c, "Credential", 10) == 0) {
			state = &credential;
			ok = parse_credential(value, value_len, out, terminator);
		} else if (name_len == 13 && memcmp(c, "SignedHeaders", 13) == 0) {
			state = &signed_headers;
			ok = parse_signed_headers(value, value_len, out);
		} else if (name_len == 9 && memcmp(c, "Signature", 9) == 0) {
			state = &signature;
			ok = parse_signature(value, value_len, out);
		}
		if (state != NULL)
			*state = *state == PART_ABSENT && ok ? PART_OK : PART_BAD;
	}
	bool date_missing = amz_date == NULL && http_date == NULL;
	if (credential != PART_OK || signature != PART_OK || signed_headers != PART_OK || date_missing) {
		shown_set(&shown_authorization, authorization->value, authorization->value_len);
		return error_set(err, SIGV4_INCOMPLETE, "%s%s%s%sAuthorization=%s",
				 credential != PART_OK ? "Authorization header requires 'Credential' parameter. " : "",
				 signature != PART_OK ? "Authorization header requires 'Signature' parameter. " : "",
				 signed_headers != PART_OK ? "Authorization header requires 'SignedHeaders' parameter. "
							   : "",
				 date_missing ? "Authorization header requires existence of either a 'X-Amz-Date' or "
						"a 'Date' header. "
					      : "",
				 shown_authorization.text);
	}

	/* X-Amz-Date, else Date; either once */
	const struct sigv4_header *when = amz_date != NULL ? amz_date : http_date;
	const char *date = when->value;
	size_t date_len = when->value_len;
	trim_ows(&date, &date_len);
	bool date_ok = amz_date != NULL ? n_amz_date == 1 && sigv4_parse_amz_date(date, date_len, &out->amz_time)
					: n_http_date == 1 && parse_http_date(date, date_len, &out->amz_time);
	if (!date_ok) {
		struct shown shown_date;
		shown_set(&shown_date, when->value, when->value_len);
		return error_set(err, SIGV4_INCOMPLETE,
				 "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601",
				 shown_date.text);
	}
	sigv4_format_amz_date(out->amz_time, out->amz_date);

	if (memcmp(out->date, out->amz_date, 8) != 0)
		return error_set(err, SIGV4_INVALID,
				 "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
				 "HTTP: '%s' != '%.8s', from '%s'.",
				 out->date, out->amz_date, amz_date != NULL ? "X-Amz-Date" : "Date");
	if (strcmp(out->region, region) != 0)
		return error_set(err, SIGV4_INVALID, "Credential should be scoped to a valid region, not '%s'. ",
				 out->region);
	if (strcmp(out->service, service) != 0)
		return error_set(err, SIGV4_INVALID, "Credential should be scoped to correct service: '%s'. ", service);
	if (strcmp(terminator, SIGV4_TERMINATOR) != 0)
		return error_set(err, SIGV4_INVALID,
				 "Credential should be scoped with a valid terminator: '" SIGV4_TERMINATOR "', not '%s'. ",
				 terminator);

	char now_text[17], edge_text[17];
	sigv4_format_amz_date(now, now_text);
	if (out->amz_time < now - SIGV4_MAX_SKEW_S) {
		sigv4_format_amz_date(now - SIGV4_MAX_SKEW_S, edge_text);
		return error_set(err, SIGV4_INVALID, "Signature expired: %s is now earlier than %s (%s - 15 min.)",
				 out->amz_date, edge_text, now_text);
	}
	if (out->amz_time > now + SIGV4_MAX_SKEW_S) {
		sigv4_format_amz_date(now + SIGV4_MAX_SKEW_S, edge_text);
		return error_set(err, SIGV4_INVALID, "Signature not yet current: %s is still later than %s (%s + 15 min.)",
				 out->amz_date, edge_text, now_text);
	}
	return SIGV4_OK;
}

/* ---- step 2: the canonical request and the string to sign --------------------- */

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.' || c == '~';
}

/* Appends s percent-encoded: unreserved bytes (and '/' when slash_safe)
 * as they are, every other byte as %XX. */
static int append_encoded(struct berth_buf *b, const char *s, size_t len, bool slash_safe)
{
	static const char digits[] = "0123456789ABCDEF";
	if (buf_reserve(b, len * 3) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (slash_safe && c == '/')) {
			b->data[b->len++] = (char)c;
		} else {
			b->data[b->len++] = '%';
			b->data[b->len++] = digits[c >> 4];
			b->data[b->len++] = digits[c & 15];
		}
	}
	b->data[b->len] = '\0';
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A query name or value, percent-decoded ("%zz" stays as it is) then
 * encoded with safe "-_.~": the form botocore signs, whatever escaping the
 * client chose on the wire. */
static int append_query_component(struct berth_buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
			c = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
			i += 2;
		}
		if (append_encoded(b, &c, 1, false) < 0)
			return -1;
	}
	return 0;
}

/* The path as botocore's normalize_url_path leaves it (RFC 3986 dot
 * segments removed, empty segments dropped), then quoted with safe "/~". */
static int append_canonical_uri(struct berth_buf *b, const char *path, size_t len)
{
	if (len == 0)
		return buf_append(b, "/", 1);
	struct berth_buf norm = BERTH_BUF_INIT; /* "/seg/seg": each kept segment after a '/' */
	if (buf_reserve(&norm, len + 1) < 0)
		return -1;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		const char *seg = path + start;
		size_t seg_len = i - start;
		start = i + 1;
		if (seg_len == 0 || (seg_len == 1 && seg[0] == '.'))
			continue;
		if (seg_len == 2 && seg[0] == '.' && seg[1] == '.') {
			while (norm.len > 0 && norm.data[norm.len - 1] != '/')
				norm.len--;
			if (norm.len > 0)
				norm.len--;
			continue;
		}
		norm.data[norm.len++] = '/';
		memcpy(norm.data + norm.len, seg, seg_len);
		norm.len += seg_len;
	}
	bool absolute = path[0] == '/', kept = norm.len > 0;
	const char *out = norm.data;
	size_t out_len = norm.len;
	if (!absolute && kept)
		out++, out_len--; /* "a/b": no leading '/' */
	int r = 0;
	if (absolute && !kept)
		r = buf_append(b, "/", 1);
	else
		r = append_encoded(b, out, out_len, true);
	if (r == 0 && kept && path[len - 1] == '/')
		r = buf_append(b, "/", 1);
	buf_free(&norm);
	return r;
}

struct query_pair {
	size_t name, name_len, value, value_len; /* offsets into the pairs' text */
};

static int query_pair_cmp(const void *a, const void *b, void *text_arg)
{
	const char *text = text_arg;
	const struct query_pair *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(text + x->name, text + y->name, n);
	if (c != 0 || x->name_len != y->name_len)
		return c != 0 ? c : (x->name_len < y->name_len ? -1 : 1);
	n = x->value_len < y->value_len ? x->value_len : y->value_len;
	c = memcmp(text + x->value, text + y->value, n);
	if (c != 0 || x->value_len != y->value_len)
		return c != 0 ? c : (x->value_len < y->value_len ? -1 : 1);
	return 0;
}

/* name=value pairs sorted by name then value, joined by '&'; "a" is "a=";
 * as botocore, every '&'-separated piece is a pair, empty ones too. */
static int append_canonical_query(struct berth_buf *b, const char *query, size_t len)
{
	if (len == 0)
		return 0;
	size_t n = 1;
	for (size_t i = 0; i < len; i++)
		n += query[i] == '&';
	struct query_pair *pairs = calloc(n, sizeof(*pairs));
	struct berth_buf text = BERTH_BUF_INIT;
	int r = -1;
	/* every byte may become %XX; reserved now so that text.data is set
	 * even when every pair is empty ("?&&") */
	if (pairs == NULL || buf_reserve(&text, len * 3) < 0) {
		errno = ENOMEM;
		goto out;
	}
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && query[i] != '&')
			continue;
		const char *p = query + start;
		size_t p_len = i - start;
		start = i + 1;
		const char *eq = memchr(p, '=', p_len);
		size_t name_len = eq ? (size_t)(eq - p) : p_len;
		pairs[k].name = text.len;
		if (append_query_component(&text, p, name_len) < 0)
			goto out;
		pairs[k].name_len = text.len - pairs[k].name;
		pairs[k].value = text.len;
		if (eq != NULL && append_query_component(&text, eq + 1, p_len - name_len - 1) < 0)
			goto out;
		pairs[k].value_len = text.len - pairs[k].value;
		k++;
	}
	qsort_r(pairs, n, sizeof(*pairs), query_pair_cmp, text.data);
	for (size_t i = 0; i < n; i++) {
		if ((i > 0 && buf_append(b, "&", 1) < 0) ||
		    buf_append(b, text.data + pairs[i].name, pairs[i].name_len) < 0 || buf_append(b, "=", 1) < 0 ||
		    buf_append(b, text.data + pairs[i].value, pairs[i].value_len) < 0)
			goto out;
	}
	r = 0;
out:
	free(pairs);
	buf_free(&text);
	return r;
}

static bool is_fold_space(char c)
{
	/* what Python's str.split() splits ASCII text on */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
	       (c >= 0x1c && c <= 0x1f);
}

/* A header value trimmed, inner runs of white space as one space. */
static int append_folded(struct berth_buf *b, const char *v, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	bool pending_space = false, any = false;
	for (size_t i = 0; i < len; i++) {
		if (is_fold_space(v[i])) {
			pending_space = any;
			continue;
		}
		if (pending_space)
			b->data[b->len++] = ' ';
		b->data[b->len++] = v[i];
		pending_space = false;
		any = true;
	}
	b->data[b->len] = '\0';
	return 0;
}

/* "name:value[,value…]\n" for one signed header; 1 when the request does
 * not carry it. */
static int append_canonical_header(struct berth_buf *b, const struct sigv4_request *req, const char *name,
				   size_t name_len)
{
	char lower[1024];
	memcpy(lower, name, name_len);
	lower[name_len] = '\0';
	const char *lookup = lower;
	bool found = false;
	for (int pass = 0; pass < 2 && !found; pass++) {
		if (pass == 1) {
			if (strcmp(lower, "host") != 0)
				break;
			lookup = ":authority"; /* HTTP/2 */
		}
		for (size_t i = 0; i < req->n_headers; i++) {
			if (!header_is(&req->headers[i], lookup))
				continue;
			if ((!found && (buf_append(b, lower, name_len) < 0 || buf_append(b, ":", 1) < 0)) ||
			    (found && buf_append(b, ",", 1) < 0) ||
			    append_folded(b, req->headers[i].value, req->headers[i].value_len) < 0)
				return -1;
			found = true;
		}
	}
	if (!found)
		return 1;
	return buf_append(b, "\n", 1);
}

bool sigv4_signed_headers_have(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p != '\0';) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, name, n) == 0)
			return true;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return false;
}

int sigv4_canonical_request(const struct sigv4_request *req, const struct sigv4_auth *auth, struct berth_buf *out,
			    struct sigv4_error *err)
{
	buf_reset(out);
	if (buf_reserve(out, 512) < 0) /* most requests' canonical form fits: no regrowth */
		return -1;
	if (!sigv4_signed_headers_have(auth->signed_headers, "host"))
		return error_set(err, SIGV4_INVALID,
				 "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
	const char *payload_hash = req->payload_hash != NULL ? req->payload_hash : "";
	for (size_t i = 0; i < req->n_headers; i++) {
		if (!header_is(&req->headers[i], "x-amz-content-sha256"))
			continue;
		const char *v = req->headers[i].value;
		size_t len = req->headers[i].value_len;
		trim_ows(&v, &len);
		if (len != strlen(payload_hash) || memcmp(v, payload_hash, len) != 0)
			return error_set(err, SIGV4_INVALID,
					 "The provided 'x-amz-content-sha256' header does not match what was computed.");
	}

	for (const char *m = req->method; *m != '\0'; m++)
		if (buf_append(out, &(char){ (char)toupper((unsigned char)*m) }, 1) < 0)
			return -1;
	if (buf_append(out, "\n", 1) < 0)
		return -1;
	/* path and query as urlsplit cuts them: the path ends at '?' or
	 * '#', the query at '#' */
	const char *target = req->target;
	size_t target_len = strcspn(target, "#");
	size_t path_len = strcspn(target, "?#");
	if (append_canonical_uri(out, target, path_len) < 0 || buf_append(out, "\n", 1) < 0)
		return -1;
	if (path_len < target_len &&
	    append_canonical_query(out, target + path_len + 1, target_len - path_len - 1) < 0)
		return -1;
	if (buf_append(out, "\n", 1) < 0)
		return -1;
	for (const char *p = auth->signed_headers; *p != '\0';) {
		size_t len = strcspn(p, ";");
		int r = append_canonical_header(out, req, p, len);
		if (r < 0)
			return -1;
		if (r > 0) /* a signed header the request does not carry */
			return error_set(err, SIGV4_INVALID, "%s", mismatch_message);
		p += len + (p[len] == ';');
	}
	if (buf_append(out, "\n", 1) < 0 || buf_append_str(out, auth->signed_headers) < 0 ||
	    buf_append(out, "\n", 1) < 0 || buf_append_str(out, payload_hash) < 0)
		return -1;
	return SIGV4_OK;
}

/* The string to sign; the canonical request hashed with hasher when given
 * (a digest already fetched), else one-shot. */
static int string_to_sign(const struct sigv4_request *req, const struct sigv4_auth *auth, struct berth_buf *out,
			  struct sigv4_error *err, struct sigv4_hasher *hasher)
{
	buf_reset(out);
	struct berth_buf canonical = BERTH_BUF_INIT;
	int r = sigv4_canonical_request(req, auth, &canonical, err);
	if (r == SIGV4_OK && buf_reserve(out, 256) < 0)
		r = -1;
	if (r == SIGV4_OK) {
		char hash[65];
		if (hasher) {
			sigv4_hasher_reset(hasher);
			sigv4_hasher_update(hasher, canonical.data, canonical.len);
			sigv4_hasher_final_hex(hasher, hash);
		} else {
			sigv4_sha256_hex(canonical.data, canonical.len, hash);
		}
		const char *parts[] = { SIGV4_ALGORITHM "\n", auth->amz_date, "\n", auth->date, "/", auth->region, "/",
					auth->service, "/" SIGV4_TERMINATOR "\n", hash };
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && r == SIGV4_OK; i++)
			if (buf_append_str(out, parts[i]) < 0)
				r = -1;
	}
	buf_free(&canonical);
	return r;
}

int sigv4_string_to_sign(const struct sigv4_request *req, const struct sigv4_auth *auth, struct berth_buf *out,
			 struct sigv4_error *err)
{
	return string_to_sign(req, auth, out, err, NULL);
}

struct sigv4_mac {
	EVP_MD_CTX *inner, *outer, *scratch; /* after key^ipad, after key^opad, work */
	struct sigv4_hasher *hasher;         /* for the canonical request */
};

void sigv4_mac_free(struct sigv4_mac *m)
{
	if (m == NULL)
		return;
	EVP_MD_CTX_free(m->inner); /* EVP_MD_CTX_free cleanses the states */
	EVP_MD_CTX_free(m->outer);
	EVP_MD_CTX_free(m->scratch);
	sigv4_hasher_free(m->hasher);
	free(m);
}

struct sigv4_mac *sigv4_mac_new(const unsigned char key[SIGV4_KEY_LEN])
{
	struct sigv4_mac *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	unsigned char ipad[64], opad[64];
	memset(ipad, 0x36, sizeof(ipad));
	memset(opad, 0x5c, sizeof(opad));
	for (size_t i = 0; i < SIGV4_KEY_LEN; i++) {
		ipad[i] ^= key[i];
		opad[i] ^= key[i];
	}
	m->inner = EVP_MD_CTX_new();
	m->outer = EVP_MD_CTX_new();
	m->scratch = EVP_MD_CTX_new();
	m->hasher = sigv4_hasher_new();
	bool ok = m->inner && m->outer && m->scratch && m->hasher &&
		  EVP_DigestInit_ex(m->inner, m->hasher->md, NULL) == 1 &&
		  EVP_DigestUpdate(m->inner, ipad, sizeof(ipad)) == 1 &&
		  EVP_DigestInit_ex(m->outer, m->hasher->md, NULL) == 1 &&
		  EVP_DigestUpdate(m->outer, opad, sizeof(opad)) == 1;
	OPENSSL_cleanse(ipad, sizeof(ipad));
	OPENSSL_cleanse(opad, sizeof(opad));
	if (!ok) {
		sigv4_mac_free(m);
		errno = ENOMEM;
		return NULL;
	}
	return m;
}

/* HMAC-SHA256 (RFC 2104) from the prepared blocks. */
static bool mac_compute(struct sigv4_mac *m, const void *data, size_t len, unsigned char out[32])
{
	unsigned char inner[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	bool ok = EVP_MD_CTX_copy_ex(m->scratch, m->inner) == 1 && EVP_DigestUpdate(m->scratch, data, len) == 1 &&
		  EVP_DigestFinal_ex(m->scratch, inner, &n) == 1 && EVP_MD_CTX_copy_ex(m->scratch, m->outer) == 1 &&
		  EVP_DigestUpdate(m->scratch, inner, 32) == 1 && EVP_DigestFinal_ex(m->scratch, out, &n) == 1;
	OPENSSL_cleanse(inner, sizeof(inner));
	return ok;
}

int sigv4_verify_mac(const struct sigv4_request *req, const struct sigv4_auth *auth, struct sigv4_mac *m,
		     struct sigv4_error *err)
{
	struct berth_buf sts = BERTH_BUF_INIT;
	int r = string_to_sign(req, auth, &sts, err, m->hasher);
	if (r == SIGV4_OK) {
		unsigned char mac[32];
		char mac_hex[65];
		if (!mac_compute(m, sts.data, sts.len, mac)) {
			r = -1;
		} else {
			hex_encode(mac, sizeof(mac), mac_hex);
			if (CRYPTO_memcmp(mac_hex, auth->signature, 64) != 0)
				r = error_set(err, SIGV4_INVALID, "%s", mismatch_message);
			OPENSSL_cleanse(mac_hex, sizeof(mac_hex));
		}
		OPENSSL_cleanse(mac, sizeof(mac));
	}
	buf_free(&sts);
	return r;
}

int sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth,
		 const unsigned char key[SIGV4_KEY_LEN], struct sigv4_error *err)
{
	struct berth_buf sts = BERTH_BUF_INIT;
	int r = sigv4_string_to_sign(req, auth, &sts, err);
	if (r == SIGV4_OK)
		r = sigv4_check(key, sts.data, sts.len, auth->signature, err);
	buf_free(&sts);
	return r;
}
