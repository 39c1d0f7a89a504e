/* images.h — `berth images [prune]` and `berth pull REF`: berthd's
 * registry image cache through its admin socket (proto_control.h kind 8). */
#ifndef BERTH_CLI_IMAGES_H
#define BERTH_CLI_IMAGES_H

/* argv[0] is "images" or "pull". Exit status: 0, 1 (berthd said no), 2 (usage). */
int cli_images(const char *socket, int argc, char **argv);

#endif
