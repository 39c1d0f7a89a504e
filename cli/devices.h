/* devices.h — `berth devices`: the host's CDI devices (berthd's
 * "devices" operation on the admin socket): name, kind, health, the
 * endpoint instance holding it, the spec file defining it; then each spec
 * file berthd refused and why. */
#ifndef BERTH_CLI_DEVICES_H
#define BERTH_CLI_DEVICES_H

int cli_devices(const char *socket, int argc, char **argv);

#endif
