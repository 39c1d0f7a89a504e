/* identity.h — the name a berthd instance gives everything it makes that
 * the whole host shares (its cgroup root, its default run directory, its
 * window of user namespace ids), derived from its state directory so that
 * two berthds with different state directories never touch each other's.
 *
 *   the default state directory (/var/lib/berth)  "berth" (today's names:
 *                                                  an upgraded host keeps
 *                                                  its cgroups)
 *   any other                                      "berth-" and the first 8
 *                                                  hex digits of the
 *                                                  SHA-256 of its realpath
 *
 * One state directory has one berthd (its lock), so one identity has one
 * berthd; two directories share an identity only on a 32-bit hash
 * collision, which the window lock (uid_range.h) and the run directory's
 * lock then refuse at start. */
#ifndef BERTH_IDENTITY_H
#define BERTH_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define BERTH_IDENTITY_DEFAULT "berth"
/* "berth-" + 8 hex digits + NUL */
#define BERTH_IDENTITY_MAX 16

/* The identity of the state directory whose realpath is state_real;
 * default_real is the realpath of the default state directory (or the
 * default's name when it does not exist). */
void berth_identity_of(const char *state_real, const char *default_real, char out[BERTH_IDENTITY_MAX]);
/* A number derived from the identity (the first 32 bits of its hash; 0
 * for the default), from which a window of ids is chosen. */
uint32_t berth_identity_number(const char *identity);

#endif
