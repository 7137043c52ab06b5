/* check.h - the assertions of the unit tests. A failed CHECK prints file:line and the
 * expression and marks the test failed; main() returns check_result(). */
#ifndef CAIRN_CHECK_H
#define CAIRN_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(expr) do { \
	if (!(expr)) { \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
		check_failures++; \
	} } while (0)

#define CHECK_EQ(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { \
		fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", \
			__FILE__, __LINE__, #a, #b, _a, _b); \
		check_failures++; \
	} } while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

#define RUN(fn) do { \
	int _before = check_failures; \
	fn(); \
	fprintf(stderr, "%s %s\n", check_failures == _before ? "ok  " : "FAIL", #fn); \
	} while (0)

static inline int check_result(void) { return check_failures ? 1 : 0; }

#endif
