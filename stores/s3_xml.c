/* s3_xml.c - S3 response bodies; see s3_xml.h for the shapes read. */
#include "s3_xml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3_sign.h"

#define PARSE_FLAGS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)

void s3_xml_init(void)
{
	xmlInitParser();
}

static int is_elem(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static const xmlNode *child(const xmlNode *parent, const char *name)
{
	for (const xmlNode *c = parent->children; c; c = c->next)
		if (is_elem(c, name))
			return c;
	return NULL;
}

/* malloc'd text content of the first child element called name, or NULL (absent or
 * out of memory: *oom tells which). */
static char *child_text(const xmlNode *parent, const char *name, int *oom)
{
	const xmlNode *c = child(parent, name);
	xmlChar *t;
	char *s;

	if (!c)
		return NULL;
	t = xmlNodeGetContent(c);
	s = strdup(t ? (const char *)t : "");
	xmlFree(t);
	if (!s)
		*oom = 1;
	return s;
}

static xmlDoc *parse(const char *body, size_t len)
{
	if (!body || !len || len > (size_t)INT32_MAX)
		return NULL;
	return xmlReadMemory(body, (int)len, "s3.xml", NULL, PARSE_FLAGS);
}

int s3_xml_error(const char *body, size_t len, char *code, size_t code_cap, char *msg,
		 size_t msg_cap)
{
	xmlDoc *doc;
	xmlNode *root;
	char *c, *m;
	int oom = 0, rc = 0;

	if (code_cap)
		code[0] = 0;
	if (msg_cap)
		msg[0] = 0;
	doc = parse(body, len);
	if (!doc)
		return -EBADMSG;
	root = xmlDocGetRootElement(doc);
	if (!root || !is_elem(root, "Error")) {
		rc = -EBADMSG;
		goto out_free_doc;
	}
	c = child_text(root, "Code", &oom);
	m = child_text(root, "Message", &oom);
	if (c && code_cap)
		snprintf(code, code_cap, "%s", c);
	if (m && msg_cap)
		snprintf(msg, msg_cap, "%s", m);
	free(c);
	free(m);
	if (oom)
		rc = -ENOMEM;
out_free_doc:
	xmlFreeDoc(doc);
	return rc;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -EBADMSG;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -EBADMSG : 0;
}

static int add_entry(struct s3_list_page *p, const xmlNode *contents, int url_encoded,
		     size_t *cap)
{
	int oom = 0, rc;
	char *key = child_text(contents, "Key", &oom);
	char *size = child_text(contents, "Size", &oom);
	uint64_t sz = 0;

	rc = oom ? -ENOMEM : !key ? -EBADMSG : parse_u64(size, &sz);
	if (!rc && url_encoded)
		rc = s3_uri_decode(key) ? -EBADMSG : 0;
	if (!rc && p->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct s3_list_entry *v = realloc(p->v, ncap * sizeof(*v));

		if (v) {
			p->v = v;
			*cap = ncap;
		} else {
			rc = -ENOMEM;
		}
	}
	free(size);
	if (rc) {
		free(key);
		return rc;
	}
	p->v[p->n].key = key;
	p->v[p->n].size = sz;
	p->n++;
	return 0;
}

int s3_xml_list(const char *body, size_t len, struct s3_list_page *out)
{
	xmlDoc *doc;
	xmlNode *root;
	char *s;
	size_t cap = 0;
	int oom = 0, url_encoded = 0, rc = 0;

	memset(out, 0, sizeof(*out));
	doc = parse(body, len);
	if (!doc)
		return -EBADMSG;
	root = xmlDocGetRootElement(doc);
	if (!root || !is_elem(root, "ListBucketResult")) {
		rc = -EBADMSG;
		goto out_free_doc;
	}
	s = child_text(root, "IsTruncated", &oom);
	out->truncated = s && !strcmp(s, "true");
	free(s);
	s = child_text(root, "EncodingType", &oom);
	url_encoded = s && !strcmp(s, "url");
	free(s);
	out->next_token = child_text(root, "NextContinuationToken", &oom);
	if (oom) {
		rc = -ENOMEM;
		goto out_free_doc;
	}
	if (out->truncated && (!out->next_token || !*out->next_token)) {
		rc = -EBADMSG;
		goto out_free_doc;
	}
	for (const xmlNode *c = root->children; c; c = c->next) {
		if (!is_elem(c, "Contents"))
			continue;
		rc = add_entry(out, c, url_encoded, &cap);
		if (rc)
			goto out_free_doc;
	}
out_free_doc:
	xmlFreeDoc(doc);
	if (rc)
		s3_list_page_free(out);
	return rc;
}

void s3_list_page_free(struct s3_list_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].key);
	free(p->v);
	free(p->next_token);
	memset(p, 0, sizeof(*p));
}
