/* budget.h — a bound on bytes held in memory, shared by whoever charges it.
 *
 * The router holds request bodies until the request is done. Each body
 * byte is charged to the global budget (every client) and, for HTTP/2, to
 * its connection's budget (every stream of one client); a charge that does
 * not fit under both is refused whole and charges nothing, so the caller
 * refuses the request instead of buffering it (CONTRACT: 503 with
 * Retry-After on HTTP/1.1, RST_STREAM REFUSED_STREAM on HTTP/2). Pure. */
#ifndef BERTH_ROUTER_BUDGET_H
#define BERTH_ROUTER_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

struct budget {
	size_t used;
	size_t limit;
};

/* Charges n to both (conn may be NULL) when it fits under both limits. */
bool budget_charge(struct budget *conn, struct budget *global, size_t n);
/* Gives back n charged earlier (conn may be NULL). */
void budget_release(struct budget *conn, struct budget *global, size_t n);

#endif
