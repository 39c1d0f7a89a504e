/* fuzz_layer.c — libFuzzer target: applying an OCI image layer
 * (orchestrator/layer.c) as oci_resolve does: the input is the layer blob
 * (tar, gzip or zstd: libarchive decides), read from a file descriptor
 * (a memfd) and applied onto an empty root directory, which is then
 * removed whole. Besides the sanitizers' findings, the target checks the
 * one promise layer.h makes about the blob (size and sha256 of the bytes
 * read) and that nothing was written outside the root: the root sits in a
 * parent directory of its own beside a directory "outside" holding one
 * file "canary"; afterwards the parent must hold just those two, outside
 * just the canary, unchanged (the seeds aim symlinks and hard links at
 * ../outside, so mutations keep trying to get there). */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fsutil.h"
#include "layer.h"

#define FUZZ_MAX_BLOB (1u << 20)

static size_t entries_in(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		abort();
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* tmpfs when there is one: every input writes a small tree */
	char parent[] = "/dev/shm/berth-fuzz-layer-XXXXXX";
	char parent_tmp[] = "/tmp/berth-fuzz-layer-XXXXXX";
	char *p = mkdtemp(parent) ? parent : mkdtemp(parent_tmp);
	if (p == NULL)
		abort();
	char root[64], outside[64], canary[80];
	snprintf(root, sizeof(root), "%s/root", p);
	snprintf(outside, sizeof(outside), "%s/outside", p);
	snprintf(canary, sizeof(canary), "%s/canary", outside);
	if (mkdir(root, 0755) < 0 || mkdir(outside, 0755) < 0)
		abort();
	int canary_fd = open(canary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (canary_fd < 0 || fs_write_all(canary_fd, "canary", 6) < 0)
		abort();
	close(canary_fd);
	struct berth_err err;
	int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int blob_fd = memfd_create("layer", MFD_CLOEXEC);
	if (root_fd < 0 || blob_fd < 0)
		abort();
	if (size > 0 && write(blob_fd, data, size) != (ssize_t)size)
		abort();
	if (lseek(blob_fd, 0, SEEK_SET) != 0)
		abort();

	struct layer_result res;
	if (layer_apply(root_fd, blob_fd, FUZZ_MAX_BLOB, &res, &err) == 0) {
		/* the whole blob was read and measured */
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int md_len = 0;
		if (EVP_Digest(data, size, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
			abort();
		char hex[65];
		for (size_t i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		if (res.size != size || strcmp(res.sha256, hex) != 0) {
			fprintf(stderr, "layer result %llu bytes %s, blob %zu bytes %s\n",
				(unsigned long long)res.size, res.sha256, size, hex);
			abort();
		}
	}
	close(blob_fd);
	close(root_fd);
	char text[16] = "";
	int fd = open(canary, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (entries_in(p) != 2 || entries_in(outside) != 1 || n != 6 || memcmp(text, "canary", 6) != 0) {
		fprintf(stderr, "the layer wrote outside its root, into %s\n", p);
		abort();
	}
	if (fs_remove_tree(p, &err) < 0) {
		fprintf(stderr, "fuzz_layer: %s\n", err.msg);
		abort();
	}
	return 0;
}
