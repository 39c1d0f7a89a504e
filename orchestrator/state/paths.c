/* paths.c — see paths.h. */
#include "paths.h"

#include "fsutil.h"

char *state_path_mme_endpoint(const char *state_dir, const char *endpoint)
{
	return fs_path("%s/mme/%s", state_dir, endpoint);
}

char *state_path_container(const char *state_dir, const char *id)
{
	return id ? fs_path("%s/containers/%s", state_dir, id) : fs_path("%s/containers", state_dir);
}
