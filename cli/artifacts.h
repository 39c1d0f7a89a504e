/* artifacts.h — `berth artifacts [prune]`: berthd's model data cache
 * (ModelDataUrl and SAGEMAKER_SUBMIT_DIRECTORY archives, unpacked) through
 * its admin socket (proto_control.h kind 9). */
#ifndef BERTH_CLI_ARTIFACTS_H
#define BERTH_CLI_ARTIFACTS_H

/* argv[0] is "artifacts". Exit status: 0, 1 (berthd said no), 2 (usage). */
int cli_artifacts(const char *socket, int argc, char **argv);

#endif
