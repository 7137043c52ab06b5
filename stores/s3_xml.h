/* s3_xml.h - parsing of the S3 XML response bodies the S3 backend reads (libxml2).
 *
 * Elements are matched by local name, so any namespace (or none) is accepted.
 *   <Error><Code>NoSuchKey</Code><Message>...</Message>...</Error>
 *   <ListBucketResult> ListObjectsV2:
 *     <IsTruncated>true|false</IsTruncated>
 *     <NextContinuationToken>opaque</NextContinuationToken>   (when truncated)
 *     <EncodingType>url</EncodingType>                          (keys are %-encoded)
 *     <Contents><Key>k</Key><Size>n</Size>...</Contents>*      (in S3's order)
 *
 * s3_xml_init() must run once before any parse when several threads parse at once
 * (the backend calls it from its pthread_once). All functions return 0 or a negative
 * errno; a body that is not well-formed XML of the expected shape is -EBADMSG.
 */
#ifndef CAIRN_S3_XML_H
#define CAIRN_S3_XML_H

#include <stddef.h>
#include <stdint.h>

struct s3_list_entry {
	char *key;     /* decoded when the response was url-encoded */
	uint64_t size;
};

struct s3_list_page {
	struct s3_list_entry *v;
	size_t n;
	int truncated;     /* IsTruncated was true */
	char *next_token;  /* NextContinuationToken, or NULL */
};

void s3_xml_init(void);
/* Code and Message of an <Error> body, truncated to fit; "" where absent. */
int s3_xml_error(const char *body, size_t len, char *code, size_t code_cap, char *msg,
		 size_t msg_cap);
/* Parse one ListObjectsV2 page into out (freed with s3_list_page_free, also on error). */
int s3_xml_list(const char *body, size_t len, struct s3_list_page *out);
void s3_list_page_free(struct s3_list_page *p);

#endif
