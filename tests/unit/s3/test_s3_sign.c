/* Unit tests of SigV4 (s3_sign.c) against the signed examples of AWS's S3 documentation
 * ("Signature Calculations for the Authorization Header: Transferring Payload in a
 * Single Chunk"): credentials AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
 * 20130524T000000Z, us-east-1, virtual-hosted bucket examplebucket. Also the S3 URL
 * parser, the URI encoder and the XML parsers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend_s3.h"
#include "check.h"
#include "s3_sign.h"
#include "s3_xml.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define DATE "20130524T000000Z"
#define SCOPE "20130524/us-east-1/s3/aws4_request"

static void sign_check(const char *method, const char *path, const struct s3_kv *q, size_t nq,
		       const struct s3_kv *h, size_t nh, const char *payload_hash,
		       const char *want_creq, const char *want_sts, const char *want_sig,
		       const char *want_signed_headers)
{
	struct s3_sign_req r = {
		.method = method, .path = path, .query = q, .nquery = nq, .headers = h,
		.nheaders = nh, .payload_hash = payload_hash, .amz_date = DATE,
		.region = "us-east-1", .service = "s3", .access_key = AK, .secret_key = SK,
	};
	struct s3_sign_out o;
	char auth[512];

	CHECK_EQ(s3_sign(&r, &o), 0);
	if (!o.authorization)
		return;
	CHECK(strcmp(o.canonical_request, want_creq) == 0);
	if (strcmp(o.canonical_request, want_creq))
		fprintf(stderr, "canonical request:\n%s\n---\nwant:\n%s\n", o.canonical_request, want_creq);
	CHECK(strcmp(o.string_to_sign, want_sts) == 0);
	if (strcmp(o.string_to_sign, want_sts))
		fprintf(stderr, "string to sign:\n%s\n", o.string_to_sign);
	CHECK(strcmp(o.signature, want_sig) == 0);
	snprintf(auth, sizeof(auth),
		 "AWS4-HMAC-SHA256 Credential=" AK "/" SCOPE ",SignedHeaders=%s,Signature=%s",
		 want_signed_headers, want_sig);
	CHECK(strcmp(o.authorization, auth) == 0);
	s3_sign_out_free(&o);
}

/* Example: GET Object, first 10 bytes of test.txt. */
static void test_get_object_range(void)
{
	const struct s3_kv h[] = {
		{ "Host", HOST }, { "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 }, { "x-amz-date", DATE },
	};

	sign_check("GET", "/test.txt", NULL, 0, h, 4, S3_EMPTY_SHA256,
		   "GET\n/test.txt\n\n"
		   "host:examplebucket.s3.amazonaws.com\n"
		   "range:bytes=0-9\n"
		   "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
		   "x-amz-date:20130524T000000Z\n"
		   "\n"
		   "host;range;x-amz-content-sha256;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n"
		   "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
		   "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		   "host;range;x-amz-content-sha256;x-amz-date");
}

/* Example: PUT Object "test$file.text" with a storage class header. */
static void test_put_object(void)
{
	const char *body = "Welcome to Amazon S3.";
	char hash[S3_SHA256_HEX_LEN + 1];

	s3_sha256_hex(body, strlen(body), hash);
	CHECK(strcmp(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072") == 0);
	const struct s3_kv h[] = {
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" }, { "Host", HOST },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" }, { "x-amz-date", DATE },
		{ "x-amz-content-sha256", hash },
	};

	sign_check("PUT", "/test$file.text", NULL, 0, h, 5, hash,
		   "PUT\n/test%24file.text\n\n"
		   "date:Fri, 24 May 2013 00:00:00 GMT\n"
		   "host:examplebucket.s3.amazonaws.com\n"
		   "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
		   "x-amz-date:20130524T000000Z\n"
		   "x-amz-storage-class:REDUCED_REDUNDANCY\n"
		   "\n"
		   "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
		   "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		   "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n"
		   "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
		   "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
		   "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
}

/* Example: GET Bucket Lifecycle, a query parameter without a value. */
static void test_get_bucket_lifecycle(void)
{
	const struct s3_kv q[] = { { "lifecycle", NULL } };
	const struct s3_kv h[] = {
		{ "Host", HOST }, { "x-amz-content-sha256", S3_EMPTY_SHA256 }, { "x-amz-date", DATE },
	};

	sign_check("GET", "/", q, 1, h, 3, S3_EMPTY_SHA256,
		   "GET\n/\nlifecycle=\n"
		   "host:examplebucket.s3.amazonaws.com\n"
		   "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
		   "x-amz-date:20130524T000000Z\n"
		   "\n"
		   "host;x-amz-content-sha256;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n"
		   "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
		   "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
		   "host;x-amz-content-sha256;x-amz-date");
}

/* Example: Get Bucket (List Objects), parameters given out of order. */
static void test_list_objects(void)
{
	const struct s3_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	const struct s3_kv h[] = {
		{ "Host", HOST }, { "x-amz-content-sha256", S3_EMPTY_SHA256 }, { "x-amz-date", DATE },
	};

	sign_check("GET", "/", q, 2, h, 3, S3_EMPTY_SHA256,
		   "GET\n/\nmax-keys=2&prefix=J\n"
		   "host:examplebucket.s3.amazonaws.com\n"
		   "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
		   "x-amz-date:20130524T000000Z\n"
		   "\n"
		   "host;x-amz-content-sha256;x-amz-date\n"
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "AWS4-HMAC-SHA256\n" DATE "\n" SCOPE "\n"
		   "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
		   "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
		   "host;x-amz-content-sha256;x-amz-date");
}

static void test_canonical_parts(void)
{
	const struct s3_kv q[] = {
		{ "prefix", "a b/c+d" }, { "continuation-token", "1/x=y~" }, { "list-type", "2" },
		{ "a", "2" }, { "a", "1" },
	};
	const struct s3_kv h[] = {
		{ "Host", "h" }, { "x-amz-date", DATE }, { "X-Amz-Meta-Odd", "  two   spaces\there  " },
	};
	struct s3_sign_req r = {
		.method = "GET", .path = "/bkt/dir/a b+c%/é~x", .query = q, .nquery = 5,
		.headers = h, .nheaders = 3, .payload_hash = S3_EMPTY_SHA256, .amz_date = DATE,
		.region = "eu-west-1", .service = "s3", .access_key = AK, .secret_key = SK,
	};
	struct s3_sign_out o;
	char *e;

	CHECK_EQ(s3_sign(&r, &o), 0);
	if (o.canonical_request) {
		CHECK(strcmp(o.canonical_uri, "/bkt/dir/a%20b%2Bc%25/%C3%A9~x") == 0);
		CHECK(strcmp(o.canonical_query, "a=1&a=2&continuation-token=1%2Fx%3Dy~&list-type=2&"
						"prefix=a%20b%2Fc%2Bd") == 0);
		CHECK(strstr(o.canonical_request, "\nx-amz-meta-odd:two spaces here\n") != NULL);
		s3_sign_out_free(&o);
	}
	/* missing host or date, bad date, duplicate header */
	r.nheaders = 1;
	CHECK_EQ(s3_sign(&r, &o), -EINVAL);
	r.nheaders = 3;
	r.amz_date = "2013-05-24";
	CHECK_EQ(s3_sign(&r, &o), -EINVAL);
	r.amz_date = DATE;
	const struct s3_kv dup[] = { { "Host", "h" }, { "host", "h" }, { "x-amz-date", DATE } };
	r.headers = dup;
	CHECK_EQ(s3_sign(&r, &o), -EINVAL);

	e = s3_uri_encode("a/b c", 5, 0);
	CHECK(e && strcmp(e, "a%2Fb%20c") == 0);
	CHECK_EQ(s3_uri_decode(e), 0);
	CHECK(strcmp(e, "a/b c") == 0);
	free(e);
	char bad[] = "x%2";
	CHECK_EQ(s3_uri_decode(bad), -EINVAL);

	char d[17];
	s3_amz_date(1369353600, d); /* 2013-05-24T00:00:00Z */
	CHECK(strcmp(d, DATE) == 0);
}

static void test_parse_url(void)
{
	char b[64], p[256];

	CHECK_EQ(backend_s3_parse_url("s3://my-bucket/some/prefix", b, sizeof(b), p, sizeof(p)), 0);
	CHECK(!strcmp(b, "my-bucket") && !strcmp(p, "some/prefix"));
	CHECK_EQ(backend_s3_parse_url("s3://my-bucket", b, sizeof(b), p, sizeof(p)), 0);
	CHECK(!strcmp(b, "my-bucket") && !strcmp(p, ""));
	CHECK_EQ(backend_s3_parse_url("s3://my.bucket.1/", b, sizeof(b), p, sizeof(p)), 0);
	CHECK(!strcmp(b, "my.bucket.1") && !strcmp(p, ""));
	CHECK_EQ(backend_s3_parse_url("s3://bkt//x/y/", b, sizeof(b), p, sizeof(p)), 0);
	CHECK(!strcmp(b, "bkt") && !strcmp(p, "x/y"));
	CHECK_EQ(backend_s3_parse_url("s3://bk", b, sizeof(b), p, sizeof(p)), -EINVAL);
	CHECK_EQ(backend_s3_parse_url("s3://Bucket/x", b, sizeof(b), p, sizeof(p)), -EINVAL);
	CHECK_EQ(backend_s3_parse_url("s3://-bucket/x", b, sizeof(b), p, sizeof(p)), -EINVAL);
	CHECK_EQ(backend_s3_parse_url("s3:///x", b, sizeof(b), p, sizeof(p)), -EINVAL);
	CHECK_EQ(backend_s3_parse_url("http://bucket/x", b, sizeof(b), p, sizeof(p)), -EINVAL);
	CHECK_EQ(backend_s3_parse_url("/tmp/repo", b, sizeof(b), p, sizeof(p)), -EINVAL);
	CHECK_EQ(backend_s3_parse_url("s3://bucket/a//b", b, sizeof(b), p, sizeof(p)), -EINVAL);
	CHECK_EQ(backend_s3_parse_url("s3://bucket/a/../b", b, sizeof(b), p, sizeof(p)), -EINVAL);
	CHECK_EQ(backend_s3_parse_url("s3://bucket/x", b, 4, p, sizeof(p)), -ENAMETOOLONG);
	CHECK_EQ(backend_s3_parse_url("s3://bucket/xyz", b, sizeof(b), p, 3), -ENAMETOOLONG);
}

static void test_xml(void)
{
	static const char err[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
		"<Message>The resource you requested does not exist</Message>"
		"<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>";
	static const char list[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>bucket</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
		"<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
		"<Contents><Key>p/a%20b</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
		"<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size></Contents>"
		"<Contents><Key>p/c&amp;d</Key><Size>0</Size></Contents></ListBucketResult>";
	static const char last[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated>"
		"<Contents><Key>k%</Key><Size>7</Size></Contents></ListBucketResult>";
	struct s3_list_page pg;
	char code[32], msg[128];

	s3_xml_init();
	CHECK_EQ(s3_xml_error(err, sizeof(err) - 1, code, sizeof(code), msg, sizeof(msg)), 0);
	CHECK(!strcmp(code, "NoSuchKey"));
	CHECK(!strcmp(msg, "The resource you requested does not exist"));
	CHECK_EQ(s3_xml_error("garbage", 7, code, sizeof(code), msg, sizeof(msg)), -EBADMSG);
	CHECK(!strcmp(code, ""));

	CHECK_EQ(s3_xml_list(list, sizeof(list) - 1, &pg), 0);
	CHECK_EQ(pg.n, 2);
	CHECK_EQ(pg.truncated, 1);
	CHECK(pg.next_token && !strcmp(pg.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="));
	if (pg.n == 2) {
		CHECK(!strcmp(pg.v[0].key, "p/a b"));
		CHECK_EQ(pg.v[0].size, 434234);
		CHECK(!strcmp(pg.v[1].key, "p/c&d"));
		CHECK_EQ(pg.v[1].size, 0);
	}
	s3_list_page_free(&pg);
	/* no EncodingType: keys taken literally */
	CHECK_EQ(s3_xml_list(last, sizeof(last) - 1, &pg), 0);
	CHECK_EQ(pg.truncated, 0);
	CHECK(pg.n == 1 && !strcmp(pg.v[0].key, "k%") && pg.v[0].size == 7);
	s3_list_page_free(&pg);
	CHECK_EQ(s3_xml_list(err, sizeof(err) - 1, &pg), -EBADMSG);
	CHECK_EQ(s3_xml_list("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
			     68, &pg), -EBADMSG);
}

int main(void)
{
	RUN(test_get_object_range);
	RUN(test_put_object);
	RUN(test_get_bucket_lifecycle);
	RUN(test_list_objects);
	RUN(test_canonical_parts);
	RUN(test_parse_url);
	RUN(test_xml);
	return check_result();
}
