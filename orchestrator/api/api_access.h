/* api_access.h — the gate of every control-plane call the router
 * forwards: its signature, then the caller's permission for the operation
 * on each resource its body names (IAM's resources of SageMaker's
 * actions: CreateEndpoint needs the endpoint and its endpoint config). */
#ifndef BERTH_API_ACCESS_H
#define BERTH_API_ACCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "access.h"
#include "api.h"

/* call: the router's control request ({"op":"control","target":…,
 * "method":…,"path":…,"headers":[[name,value],…],"body":…}); body/len its
 * body. true: the call may go on (*who says who made it); false: reply
 * holds the answer (nothing was executed). */
bool api_access_check(struct access *a, const char *operation, yajl_val call, const char *body, size_t body_len,
		      int64_t now, struct api_reply *reply, struct access_principal *who);

/* The resource an operation acts on (exposed for the unit tests):
 * "CreateModel" → model, "ModelName"; List* → the kind and NULL. false
 * for an operation berth does not know (its action alone decides). */
bool api_access_resource(const char *operation, enum credentials_kind *kind, const char **member);

#endif
