/* backoff.h — when the health monitor restarts a failed container: the
 * first restart at once, then after a delay that starts at
 * BACKOFF_MIN_MS and doubles with each restart up to BACKOFF_MAX_MS; a
 * container that stays healthy for BACKOFF_RESET_MS starts over (its next
 * restart is immediate again). Pure functions of the times given. */
#ifndef BERTH_BACKOFF_H
#define BERTH_BACKOFF_H

#include <stdbool.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define BACKOFF_RESET_MS 60000

/* The delay before the restart after one that waited delay_ms. */
long long backoff_after_restart(long long delay_ms);
/* Whether a container healthy since healthy_since_ms (0: not healthy)
 * has earned an immediate next restart at now_ms. */
bool backoff_should_reset(long long healthy_since_ms, long long now_ms);

#endif
