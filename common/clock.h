/* clock.h — the one clock of every binary. Monotonic time for timeouts and
 * intervals (never goes back, unaffected by date changes); wall-clock time
 * only for what users read (CreationTime, log stamps). */
#ifndef BERTH_CLOCK_H
#define BERTH_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds / nanoseconds since an arbitrary start. */
long long clock_now_ms(void);
uint64_t clock_now_ns(void);
/* Wall-clock seconds since the epoch, with a fraction. */
double clock_epoch_seconds(void);
/* Wall-clock seconds since the epoch, cut to milliseconds (what the
 * SageMaker API's timestamps carry). */
double clock_epoch_seconds_ms(void);
/* pthread_cond_timedwait for at most ms, on a condition made with clock
 * (CLOCK_MONOTONIC or CLOCK_REALTIME: pthread_condattr_setclock). */
void clock_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t clock, long ms);

#endif
