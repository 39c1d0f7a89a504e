/* budget.c — see budget.h. */
#include "budget.h"

static bool fits(const struct budget *b, size_t n)
{
	return b->used <= b->limit && n <= b->limit - b->used;
}

bool budget_charge(struct budget *conn, struct budget *global, size_t n)
{
	if ((conn && !fits(conn, n)) || !fits(global, n))
		return false;
	if (conn)
		conn->used += n;
	global->used += n;
	return true;
}

static void give_back(struct budget *b, size_t n)
{
	b->used = n <= b->used ? b->used - n : 0;
}

void budget_release(struct budget *conn, struct budget *global, size_t n)
{
	if (conn)
		give_back(conn, n);
	give_back(global, n);
}
