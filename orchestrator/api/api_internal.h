/* api_internal.h — what the api*.c files share (not used outside them):
 *
 *  - struct api_request: one control-plane call being decoded, collecting
 *    AWS-style validation messages ("Value 'x' at 'modelName' failed to
 *    satisfy constraint: …") or the first SerializationException (a member
 *    of the wrong JSON type), api_request.c;
 *  - replies: JSON success bodies, "Could not find …", "Cannot create
 *    already existing …", store failures, ARNs and times, api_reply.c;
 *  - List* parameters, filtering, sorting and NextToken paging, api_list.c;
 *  - List* and Delete* for every kind from one table entry per kind
 *    (struct api_kind), api_kind.c;
 *  - the operations themselves: api_model.c, api_endpoint_config.c,
 *    api_endpoint.c, api_endpoint_update.c. Every operation runs with
 *    *ctx->lock held. */
#ifndef BERTH_API_INTERNAL_H
#define BERTH_API_INTERNAL_H

#include <stdbool.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "api.h"
#include "buf.h"

/* berth's bound on InitialInstanceCount until the instance type table
 * decides what fits the host. */
#define API_MAX_INSTANCE_COUNT 20

struct api_request {
	struct api_ctx *ctx;
	struct api_reply *reply;
	yajl_val root;                /* the request object */
	struct berth_buf errors;      /* "A; B; C" */
	int n_errors;
	bool serialization_failed;
	char serialization[512];
};

/* ---- decoding (api_request.c) -------------------------------------------- */

/* A constraint violation at path for the given value (NULL value renders
 * as "null"): "Value 'v' at 'path' failed to satisfy constraint: CONSTRAINT". */
void req_invalid(struct api_request *r, yajl_val value, const char *path, const char *constraint_fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* "Value null at 'path' failed to satisfy constraint: Member must not be null" */
void req_null(struct api_request *r, const char *path);
/* Records a SerializationException (only the first one is kept). */
void req_serialization(struct api_request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Renders the collected failure into r->reply: SerializationException first,
 * then "N validation error(s) detected: …". Returns true when it did (the
 * operation must stop), false when the request is clean. */
bool req_failed(struct api_request *r);

/* Typed member access. Absent and JSON null are the same ("not given");
 * a wrong type records a SerializationException. required adds "must not be
 * null" when absent. Paths are AWS's camelCase member paths. */
const char *req_string(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required);
yajl_val req_object(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required);
yajl_val req_array(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required);
bool req_int(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required, long long *out);
bool req_number(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required, double *out);
bool req_bool(struct api_request *r, yajl_val obj, const char *key, const char *path, bool *out);
/* AWS JSON 1.1 timestamps: epoch seconds as a JSON number. */
bool req_timestamp(struct api_request *r, yajl_val obj, const char *key, const char *path, double *out);

/* Checks on a present string member (v is its JSON value, s its text). */
void check_length(struct api_request *r, yajl_val v, const char *s, const char *path, size_t min, size_t max);
/* length 1..63 and NAME_PATTERN */
void check_name(struct api_request *r, yajl_val v, const char *s, const char *path);
/* values: NULL-terminated; message "Member must satisfy enum value set: [A, B]" */
bool check_enum(struct api_request *r, yajl_val v, const char *s, const char *path, const char *const *values);
/* Gets member key as a name (required, validated); NULL when absent/invalid. */
const char *req_name(struct api_request *r, yajl_val obj, const char *key, const char *path);

/* ---- replies (api_reply.c) ------------------------------------------------------- */

/* arn:aws:sagemaker:REGION:ACCOUNT:KIND/lower-cased-name; NULL on ENOMEM. */
char *api_arn(const struct api_ctx *ctx, const char *kind, const char *name);
/* 200 with the generator's document (g is freed). */
void api_reply_gen(struct api_reply *reply, yajl_gen g);
/* 200 with a document already rendered by resources.c. */
void api_reply_text(struct api_reply *reply, const struct berth_buf *doc);
/* 200 with {"MEMBER":"ARN"}, what every Create* answers. */
void api_reply_arn(struct api_reply *reply, const char *member, const char *arn);
/* 200 with "{}". */
void api_reply_empty(struct api_reply *reply);
/* A store write failed (err, INTERNAL): "berthd could not save the change
 * …", with the reason and what to do. */
void api_reply_not_saved(struct api_reply *reply, const struct berth_err *err);
/* 500 InternalFailure "out of memory", rendered without allocating. */
void api_reply_nomem(struct api_reply *reply);
/* what: "model" / "endpoint configuration" / "endpoint"; kind: "model" /
 * "endpoint-config" / "endpoint" (the ARN's resource type). */
void api_reply_not_found(struct api_request *r, const char *what, const char *kind, const char *name);
/* SageMaker answers "Cannot create already existing model …" with
 * ValidationException (class ALREADY_EXISTS; observed on AWS, e.g.
 * terraform-provider-aws#40080 and awslabs/spot-tagging-bot-for-digital-assets#2),
 * not ResourceInUse as its API reference suggests; berth does what
 * SageMaker does. */
void api_reply_exists(struct api_request *r, const char *what, const char *kind, const char *name);
/* true when a resource of that kind already has this name, compared
 * case-insensitively (the ARN, which is lower-cased, must stay unique). */
bool api_model_name_taken(const struct store *s, const char *name);
bool api_endpoint_config_name_taken(const struct store *s, const char *name);
bool api_endpoint_name_taken(const struct store *s, const char *name);

/* ---- List* (api_list.c) ------------------------------------------------------ */

enum list_sort { LIST_SORT_CREATION_TIME, LIST_SORT_NAME, LIST_SORT_STATUS };

struct list_params {
	enum list_sort sort_by;
	bool descending;
	long long max_results;
	const char *name_contains;       /* NULL: no filter */
	bool has_created_before, has_created_after, has_modified_before, has_modified_after;
	double created_before, created_after, modified_before, modified_after;
	const char *status_equals;       /* endpoints only */
	bool has_token;                  /* the NextToken's position */
	enum list_sort token_sort;
	bool token_descending;
	double token_time;
	char *token_key;                 /* status when sorting by status */
	char *token_name;
};

struct list_item {
	const char *name;
	double creation_time;
	double last_modified_time;
	const char *status;
	const void *resource;
};

/* Decodes and validates SortBy, SortOrder, MaxResults, NextToken,
 * NameContains, CreationTime*, and (endpoints) LastModifiedTime*,
 * StatusEquals. Returns false when r holds a failure. */
bool list_params_decode(struct api_request *r, bool endpoints, struct list_params *p);
void list_params_clear(struct list_params *p);
/* Filters, sorts and pages items in place: on return items[0..*n_page) is the
 * page and *next_token a newly allocated token when more remain (else NULL). */
int list_select(const struct list_params *p, struct list_item *items, size_t n, size_t *n_page,
		char **next_token);

/* The whole of a List* operation once the caller has gathered every
 * resource into items (n of them): decodes the parameters, selects the
 * page and replies {"MEMBER":[{…}, …], "NextToken": …}; gen_summary writes
 * one entry's members (inside its braces). */
void api_list_run(struct api_request *r, bool endpoints, const char *member, struct list_item *items, size_t n,
		  int (*gen_summary)(yajl_gen g, const void *resource));

/* ---- List* and Delete* of every kind (api_kind.c) ----------------------------- */

/* What List* and Delete* need to know about one kind of resource; each
 * kind's file defines its entry (api_kind_model in api_model.c, …) and
 * api.c's operation table pairs it with api_list_kind / api_delete_kind. */
struct api_kind {
	const char *what;          /* "model", "endpoint configuration", "endpoint" (messages, logs) */
	const char *arn_kind;      /* "model", "endpoint-config", "endpoint" (the ARN's resource type) */
	const char *name_member;   /* Delete*'s request member: "ModelName" */
	const char *name_path;     /* its AWS path in messages: "modelName" */
	const char *list_member;   /* List*'s answer member: "Models" */
	bool endpoints;            /* List* takes StatusEquals, LastModifiedTime* and SortBy Status */
	size_t (*count)(const struct store *s);
	/* the i-th resource (store order) as a list item: name, times, status, resource */
	void (*item_at)(const struct store *s, size_t i, struct list_item *out);
	/* one List* entry's members, inside its braces; 0 or -1 */
	int (*gen_summary)(yajl_gen g, const void *resource);
	bool (*exists)(const struct store *s, const char *name);
	/* Delete* of an existing resource, one of: store_delete removes the
	 * record at once (the core logs and answers {}); remove does it all
	 * and replies (endpoints: stop the containers, wait). */
	int (*store_delete)(struct store *s, const char *name, struct berth_err *err);
	void (*remove)(struct api_request *r, const char *name);
};

extern const struct api_kind api_kind_model;
extern const struct api_kind api_kind_endpoint_config;
extern const struct api_kind api_kind_endpoint;

/* List*: every resource of the kind through api_list_run. */
void api_list_kind(struct api_request *r, const struct api_kind *k);
/* Delete*: the name (validated), "Could not find …" when it does not
 * exist, else the kind's removal. */
void api_delete_kind(struct api_request *r, const struct api_kind *k);

/* ---- tags (api_tags.c) ------------------------------------------------------------ */

/* Tags: list of {Key, Value} (both required), ≤ 50, keys 1..128 and values
 * 0..256 characters of SageMaker's tag pattern; a key given twice keeps its
 * last value. Copies into *out (NULL when none). */
void req_tags(struct api_request *r, yajl_val obj, struct kv **out, size_t *n_out);
/* true (and the reply written: "System prefix 'aws:' reserved …") when a
 * key starts with "aws:", which SageMaker keeps for itself. */
bool api_tags_reserved(struct api_request *r, const struct kv *tags, size_t n);
/* The whole of s matches ([\p{L}\p{Z}\p{N}_.:/=+\-@]*) (UTF-8). */
bool api_tag_text_valid(const char *s);
bool api_tag_key_reserved(const char *key);

enum api_tag_kind { API_TAG_MODEL, API_TAG_ENDPOINT_CONFIG, API_TAG_ENDPOINT };

/* A ResourceArn split: "arn:aws:sagemaker:REGION:ACCOUNT:KIND/NAME". */
struct api_arn_parts {
	char region[64];
	char account[16];
	char arn_kind[64];     /* "endpoint", "training-job", … (cut at 63) */
	const char *name;      /* points into the ARN; "" when absent */
	bool known;            /* arn_kind is one berth serves; then kind says which */
	enum api_tag_kind kind;
};
/* false when arn is longer than 256 or does not match SageMaker's
 * ResourceArn pattern arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:.+ */
bool api_arn_split(const char *arn, struct api_arn_parts *out);

/* ---- members berth does not implement yet (api_unsupported.c) ---------------- */

/* true (and the reply written: 400 ValidationException "berth does not
 * support PATH yet: …") when the request of operation ("CreateModel", …)
 * gives a member of SageMaker's that berth does not implement. Called
 * before anything is created or changed. */
bool api_refuse_unsupported(struct api_request *r, const char *operation);

/* ---- operations ---------------------------------------------------------------- */

/* (async) api_async_config.c: CreateEndpointConfig's AsyncInferenceConfig
 * into out (present false when absent), validation failures recorded in
 * r (req_failed); -1 on ENOMEM. */
int api_async_config_decode(struct api_request *r, yajl_val root, struct async_config *out);
/* (async) Refuses (replies, -1) an AsyncInferenceConfig with a variant
 * whose model is MultiModel or Direct: InvokeEndpointAsync cannot name a
 * target model or container. 0 when fine or a is absent. */
int api_async_check_modes(struct api_request *r, const char *config_name, const struct async_config *a,
			  const struct variant *v, size_t n);
void api_create_model(struct api_request *r);
void api_describe_model(struct api_request *r);
void api_create_endpoint_config(struct api_request *r);
void api_describe_endpoint_config(struct api_request *r);
void api_create_endpoint(struct api_request *r);
void api_describe_endpoint(struct api_request *r);
/* (added) api_endpoint_update.c */
void api_update_endpoint(struct api_request *r);
void api_update_endpoint_weights_and_capacities(struct api_request *r);
/* (added) api_tags.c */
void api_add_tags(struct api_request *r);
void api_delete_tags(struct api_request *r);
void api_list_tags(struct api_request *r);
/* (added) api_endpoint.c: waits, with *ctx->lock held, until the endpoint is
 * gone or its status is no longer while_status, at most ctx->grace_ms. */
void api_wait_for_endpoint(struct api_ctx *ctx, const char *name, const char *while_status);
/* (api_endpoint.c) Sets v[i].mode of the n variants of config c (an
 * endpoint's own copy) from each variant's model; 0, or -1 after replying
 * (a model gone, or two multi-model variants: berth keeps one multi-model
 * cache per endpoint). Checked by CreateEndpoint and UpdateEndpoint. */
int api_variants_set_modes(struct api_request *r, const struct endpoint_config *c, struct variant *v, size_t n);

#endif
