/* yaml_json.c — see yaml_json.h. */
#include "yaml_json.h"

#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <string.h>
#include <yaml.h>

#include "json.h"

struct conv {
	yaml_parser_t parser;
	yajl_gen g;
	int depth;
	bool in_map[YAML_JSON_MAX_DEPTH + 1]; /* per level: a mapping (keys expected at even positions) */
	bool want_key[YAML_JSON_MAX_DEPTH + 1];
};

/* YAML 1.2 core schema numbers, and the 1.1 booleans and nulls CDI tools write */
static bool plain_literal(const char *s, size_t len)
{
	static const char *const words[] = { "true", "false", "null", "~", "True", "False", "Null", "TRUE",
					     "FALSE", "NULL" };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(words); i++)
		if (strlen(words[i]) == len && memcmp(words[i], s, len) == 0)
			return true;
	if (len == 0 || len > 64)
		return len == 0; /* an empty plain scalar is null */
	char tmp[65];
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	regex_t re;
	/* what JSON can carry as a number (after an optional '+'); 0x1F, .5
	 * and 007 stay strings */
	if (regcomp(&re, "^[-+]?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?$", REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	bool m = regexec(&re, tmp, 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

static void gen_literal(yajl_gen g, const char *s, size_t len)
{
	if (len == 0 || (len == 1 && s[0] == '~') || (len == 4 && strncasecmp(s, "null", 4) == 0)) {
		yajl_gen_null(g);
	} else if (len == 4 && strncasecmp(s, "true", 4) == 0) {
		yajl_gen_bool(g, 1);
	} else if (len == 5 && strncasecmp(s, "false", 5) == 0) {
		yajl_gen_bool(g, 0);
	} else {
		const char *p = s[0] == '+' ? s + 1 : s; /* JSON has no leading '+' */
		yajl_gen_number(g, p, len - (size_t)(p - s));
	}
}

static int fail(struct berth_err *err, const yaml_event_t *ev, const char *what)
{
	return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "line %zu: %s", ev->start_mark.line + 1, what);
}

static int on_event(struct conv *c, yaml_event_t *ev, bool *done, struct berth_err *err)
{
	bool key = c->depth > 0 && c->in_map[c->depth] && c->want_key[c->depth];
	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		return 0;
	case YAML_STREAM_END_EVENT:
		*done = true;
		return 0;
	case YAML_ALIAS_EVENT:
		return fail(err, ev, "aliases are not accepted in a CDI spec");
	case YAML_SCALAR_EVENT: {
		if (ev->data.scalar.anchor)
			return fail(err, ev, "anchors are not accepted in a CDI spec");
		if (ev->data.scalar.tag && !ev->data.scalar.plain_implicit && !ev->data.scalar.quoted_implicit)
			return fail(err, ev, "tags are not accepted in a CDI spec");
		const char *v = (const char *)ev->data.scalar.value;
		size_t n = ev->data.scalar.length;
		if (!key && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && plain_literal(v, n))
			gen_literal(c->g, v, n);
		else
			json_gen_strn(c->g, v, n);
		break;
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		if (key)
			return fail(err, ev, "a mapping key must be a plain string");
		bool map = ev->type == YAML_MAPPING_START_EVENT;
		if ((map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor) != NULL)
			return fail(err, ev, "anchors are not accepted in a CDI spec");
		if (c->depth >= YAML_JSON_MAX_DEPTH)
			return fail(err, ev, "nested deeper than 64 levels");
		if (map)
			yajl_gen_map_open(c->g);
		else
			yajl_gen_array_open(c->g);
		c->depth++;
		c->in_map[c->depth] = map;
		c->want_key[c->depth] = true;
		return 0;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (ev->type == YAML_MAPPING_END_EVENT)
			yajl_gen_map_close(c->g);
		else
			yajl_gen_array_close(c->g);
		c->depth--;
		break;
	default:
		return 0;
	}
	if (c->depth > 0 && c->in_map[c->depth])
		c->want_key[c->depth] = !c->want_key[c->depth];
	return 0;
}

int yaml_to_json(const char *text, size_t len, struct berth_buf *out, struct berth_err *err)
{
	struct conv c = { 0 };
	if (!yaml_parser_initialize(&c.parser))
		return berth_err_set(err, ENOMEM, "YAML parser");
	c.g = json_gen_new();
	if (c.g == NULL) {
		yaml_parser_delete(&c.parser);
		return berth_err_set(err, ENOMEM, "YAML parser");
	}
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
	int r = 0, documents = 0;
	bool done = false;
	while (!done && r == 0) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&c.parser, &ev)) {
			r = berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "line %zu: %s",
					   c.parser.problem_mark.line + 1,
					   c.parser.problem ? c.parser.problem : "not YAML");
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT && ++documents > 1)
			r = fail(err, &ev, "a CDI spec is one YAML document, this is a second");
		else
			r = on_event(&c, &ev, &done, err);
		yaml_event_delete(&ev);
	}
	if (r == 0 && documents == 0)
		r = berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "the file holds no YAML document");
	if (r == 0 && json_gen_finish(c.g, out) < 0)
		r = berth_err_set(err, ENOMEM, "YAML to JSON");
	else if (r != 0)
		yajl_gen_free(c.g);
	yaml_parser_delete(&c.parser);
	return r;
}
