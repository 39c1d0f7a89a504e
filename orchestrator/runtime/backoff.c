/* backoff.c — see backoff.h. */
#include "backoff.h"

long long backoff_after_restart(long long delay_ms)
{
	if (delay_ms <= 0)
		return BACKOFF_MIN_MS;
	return delay_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : delay_ms * 2;
}

bool backoff_should_reset(long long healthy_since_ms, long long now_ms)
{
	return healthy_since_ms != 0 && now_ms - healthy_since_ms >= BACKOFF_RESET_MS;
}
