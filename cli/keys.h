/* keys.h — `berth keys`: the access keys of berthd's credentials file
 * (common/credentials.h). berthd reloads the file when it changes (and on
 * SIGHUP), so nothing else needs to be told. */
#ifndef BERTH_CLI_KEYS_H
#define BERTH_CLI_KEYS_H

#include "err.h"

/* argv[0] is "keys": `keys add NAME [--allow ACTIONS] [--endpoints GLOBS]
 * [--endpoint-configs GLOBS] [--models GLOBS] [--credentials PATH]` or
 * `keys ls [--credentials PATH]`. Returns the exit status. */
int cli_keys(int argc, char **argv);

#define KEYS_ID_PREFIX "BRTH"
#define KEYS_ID_LEN 20     /* BRTH + 16 of [A-Z2-7] */
#define KEYS_SECRET_LEN 40 /* [A-Za-z0-9+/] */

/* A new key id and secret from getrandom(2). 0, or -1 with err. */
int keys_generate(char id[KEYS_ID_LEN + 1], char secret[KEYS_SECRET_LEN + 1], struct berth_err *err);

#endif
