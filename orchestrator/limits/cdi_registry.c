/* cdi_registry.c — see cdi_registry.h. */
#include "cdi_registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "log.h"

static bool spec_file_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && ((n > 5 && strcmp(name + n - 5, ".json") == 0) ||
				  (n > 5 && strcmp(name + n - 5, ".yaml") == 0));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The spec files of dir, sorted; NULL-terminated. */
static char **list_dir(const char *dir, size_t *n)
{
	*n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return NULL;
	char **names = calloc(CDI_MAX_SPEC_FILES + 1, sizeof(*names));
	struct dirent *de;
	while (names && (de = readdir(d)) != NULL && *n < CDI_MAX_SPEC_FILES)
		if (spec_file_name(de->d_name) && (names[*n] = strdup(de->d_name)) != NULL)
			(*n)++;
	closedir(d);
	if (names)
		qsort(names, *n, sizeof(*names), cmp_str);
	return names;
}

/* dir listings and each file's identity, to notice a change */
static char *signature_now(const struct cdi_registry *r)
{
	struct berth_buf sig = BERTH_BUF_INIT;
	for (size_t i = 0; i < r->n_dirs; i++) {
		size_t n;
		char **names = list_dir(r->dirs[i], &n);
		buf_printf(&sig, "%s:", r->dirs[i]);
		for (size_t j = 0; names && j < n; j++) {
			_cleanup_free_ char *path = fs_path("%s/%s", r->dirs[i], names[j]);
			struct stat st;
			if (path && stat(path, &st) == 0)
				buf_printf(&sig, "%s/%llu/%lld/%lld.%09ld/%o/%u;", names[j], (unsigned long long)st.st_ino,
					   (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
					   (unsigned)st.st_mode, (unsigned)st.st_uid);
			free(names[j]);
		}
		free(names);
		buf_append_str(&sig, "\n");
	}
	if (sig.data == NULL)
		return strdup("");
	return sig.data;
}

static void add_problem(struct cdi_registry_problem **p, size_t *n, const char *path, const char *msg)
{
	struct cdi_registry_problem *np = realloc(*p, (*n + 1) * sizeof(*np));
	if (np == NULL)
		return;
	*p = np;
	np[*n].path = strdup(path);
	np[*n].message = strdup(msg);
	if (np[*n].path && np[*n].message)
		(*n)++;
	else {
		free(np[*n].path);
		free(np[*n].message);
	}
}

/* Reads one file into spec; -1 with err. */
static int load_file(const char *path, struct cdi_spec *spec, struct berth_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, errno, "cannot open it");
	if (!S_ISREG(st.st_mode))
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "not a regular file");
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022))
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "owned by uid %u with mode %04o; a CDI spec must belong to root and be writable by "
				      "no one else (chown root, chmod go-w)",
				      (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	if (st.st_size > (off_t)CDI_SPEC_MAX_BYTES)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "larger than %u bytes", CDI_SPEC_MAX_BYTES);
	struct berth_buf text = BERTH_BUF_INIT;
	char chunk[65536];
	ssize_t got;
	while ((got = read(fd, chunk, sizeof(chunk))) > 0 && text.len <= CDI_SPEC_MAX_BYTES)
		if (buf_append(&text, chunk, (size_t)got) < 0) {
			buf_free(&text);
			return berth_err_set(err, ENOMEM, "reading it");
		}
	if (got < 0) {
		buf_free(&text);
		return berth_err_setc(err, BERTH_ERR_VALIDATION, errno, "cannot read it");
	}
	size_t n = strlen(path);
	int r = cdi_spec_parse(text.data ? text.data : "", text.len, strcmp(path + n - 5, ".yaml") == 0, spec, err);
	buf_free(&text);
	return r;
}

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
	return x < y ? -1 : x > y;
}

/* every node of a is one of b's */
static bool nodes_within(const struct cdi_registry_device *a, const struct cdi_registry_device *b)
{
	for (size_t i = 0; i < a->n_nodes; i++) {
		bool found = false;
		for (size_t j = 0; j < b->n_nodes && !found; j++)
			found = a->nodes[i] == b->nodes[j];
		if (!found)
			return false;
	}
	return true;
}

static bool same_nodes(const struct cdi_registry_device *a, const struct cdi_registry_device *b)
{
	return a->n_nodes > 0 && a->n_nodes == b->n_nodes && nodes_within(a, b);
}

/* shares a node with b */
static bool overlaps(const struct cdi_registry_device *a, const struct cdi_registry_device *b)
{
	for (size_t i = 0; i < a->n_nodes; i++)
		for (size_t j = 0; j < b->n_nodes; j++)
			if (a->nodes[i] == b->nodes[j])
				return true;
	return false;
}

static int cmp_device(const void *a, const void *b)
{
	return strverscmp(((const struct cdi_registry_device *)a)->name, ((const struct cdi_registry_device *)b)->name);
}

static void clear_loaded(struct cdi_registry *r)
{
	for (size_t i = 0; i < r->n_specs; i++) {
		free(r->specs[i].path);
		cdi_spec_free(&r->specs[i].spec);
	}
	free(r->specs);
	for (size_t i = 0; i < r->n_devices; i++) {
		free(r->devices[i].name);
		free(r->devices[i].health);
		free(r->devices[i].nodes);
	}
	free(r->devices);
	for (size_t i = 0; i < r->n_problems; i++) {
		free(r->problems[i].path);
		free(r->problems[i].message);
	}
	free(r->problems);
	r->specs = NULL;
	r->devices = NULL;
	r->problems = NULL;
	r->n_specs = r->n_devices = r->n_problems = 0;
}

/* With r->mu held: reads every directory anew. */
static void reload(struct cdi_registry *r)
{
	clear_loaded(r);
	size_t cap_specs = r->n_dirs * CDI_MAX_SPEC_FILES;
	r->specs = calloc(cap_specs + 1, sizeof(*r->specs));
	if (r->specs == NULL)
		return;
	size_t *priority = calloc(cap_specs + 1, sizeof(*priority));
	if (priority == NULL)
		return;
	for (size_t i = 0; i < r->n_dirs; i++) {
		size_t n;
		char **names = list_dir(r->dirs[i], &n);
		for (size_t j = 0; names && j < n; j++) {
			char *path = fs_path("%s/%s", r->dirs[i], names[j]);
			free(names[j]);
			if (path == NULL)
				continue;
			struct berth_err err = { 0 };
			struct cdi_registry_spec *s = &r->specs[r->n_specs];
			if (load_file(path, &s->spec, &err) < 0) {
				add_problem(&r->problems, &r->n_problems, path, err.msg);
				free(path);
				continue;
			}
			s->path = path;
			priority[r->n_specs++] = i;
		}
		free(names);
	}
	/* each device once: a later directory replaces, one directory conflicts */
	size_t total = 0;
	for (size_t i = 0; i < r->n_specs; i++)
		total += r->specs[i].spec.n_devices;
	struct cdi_registry_device *devs = calloc(total + 1, sizeof(*devs));
	bool *conflict = calloc(total + 1, sizeof(*conflict));
	size_t n = 0;
	for (size_t i = 0; devs && conflict && i < r->n_specs; i++) {
		const struct cdi_spec *sp = &r->specs[i].spec;
		for (size_t j = 0; j < sp->n_devices; j++) {
			char *name = fs_path("%s=%s", sp->kind, sp->devices[j].name);
			if (name == NULL)
				continue;
			size_t k = 0;
			while (k < n && strcmp(devs[k].name, name) != 0)
				k++;
			if (k < n && priority[devs[k].spec] == priority[i]) {
				char msg[512];
				snprintf(msg, sizeof(msg), "device %s is also defined by %s; neither definition is used "
					 "until one file drops it", name, r->specs[devs[k].spec].path);
				add_problem(&r->problems, &r->n_problems, r->specs[i].path, msg);
				snprintf(msg, sizeof(msg), "device %s is also defined by %s; neither definition is used "
					 "until one file drops it", name, r->specs[i].path);
				add_problem(&r->problems, &r->n_problems, r->specs[devs[k].spec].path, msg);
				conflict[k] = true;
				free(name);
				continue;
			}
			if (k == n)
				n++;
			else
				free(devs[k].name); /* a higher-priority directory replaces it */
			devs[k] = (struct cdi_registry_device){ .name = name, .kind = sp->kind, .spec_path = r->specs[i].path,
								.spec = i, .index = j };
		}
	}
	size_t kept = 0;
	for (size_t k = 0; devs && k < n; k++) {
		if (conflict[k])
			free(devs[k].name);
		else
			devs[kept++] = devs[k];
	}
	free(conflict);
	free(priority);
	if (devs)
		qsort(devs, kept, sizeof(*devs), cmp_device);
	r->devices = devs;
	r->n_devices = devs ? kept : 0;
	for (size_t i = 0; i < r->n_problems; i++)
		log_warn("CDI spec %s: %s", r->problems[i].path, r->problems[i].message);
	struct berth_buf names = BERTH_BUF_INIT;
	for (size_t i = 0; i < r->n_devices; i++)
		buf_printf(&names, "%s%s", i ? ", " : "", r->devices[i].name);
	log_info("CDI: %zu device%s from %zu spec file%s%s%s", r->n_devices, r->n_devices == 1 ? "" : "s", r->n_specs,
		 r->n_specs == 1 ? "" : "s", names.len ? ": " : "", names.len ? names.data : "");
	buf_free(&names);
}

/* The host node of n, checked against what the spec says; fills the
 * numbers, type and mode in when the spec leaves them out. -1: msg says
 * what is wrong. */
static int fill_node(struct cdi_device_node *n, char *msg, size_t len)
{
	struct stat st;
	if (lstat(n->host_path, &st) < 0) {
		snprintf(msg, len, "device node %s: %s", n->host_path, strerror(errno));
		return -1;
	}
	char type = S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : 0;
	if (type == 0) {
		snprintf(msg, len, "device node %s is not a device", n->host_path);
		return -1;
	}
	char want = n->type == 'u' ? 'c' : n->type;
	if (want != 0 && want != type) {
		snprintf(msg, len, "device node %s is of type %c, the spec says %c", n->host_path, type, n->type);
		return -1;
	}
	long long major_n = type == 'p' ? 0 : (long long)major(st.st_rdev);
	long long minor_n = type == 'p' ? 0 : (long long)minor(st.st_rdev);
	if ((n->major >= 0 && n->major != major_n) || (n->minor >= 0 && n->minor != minor_n)) {
		snprintf(msg, len, "device node %s is %lld:%lld, the spec says %lld:%lld", n->host_path, major_n, minor_n,
			 n->major >= 0 ? n->major : major_n, n->minor >= 0 ? n->minor : minor_n);
		return -1;
	}
	if (n->type == 0)
		n->type = type;
	n->major = major_n;
	n->minor = minor_n;
	if (n->file_mode < 0)
		n->file_mode = st.st_mode & 07777;
	return 0;
}

/* With r->mu held: each device's nodes looked at now. */
static void check_health(struct cdi_registry *r)
{
	for (size_t i = 0; i < r->n_devices; i++) {
		struct cdi_registry_device *d = &r->devices[i];
		const struct cdi_spec *sp = &r->specs[d->spec].spec;
		char msg[512] = "";
		const struct cdi_edits *lists[] = { &sp->edits, &sp->devices[d->index].edits };
		for (size_t l = 0; l < 2 && msg[0] == '\0'; l++)
			for (size_t k = 0; k < lists[l]->n_nodes && msg[0] == '\0'; k++) {
				struct cdi_device_node copy = lists[l]->nodes[k];
				if (fill_node(&copy, msg, sizeof(msg)) == 0)
					msg[0] = '\0';
			}
		bool was_ok = d->health == NULL;
		if ((msg[0] == '\0') != was_ok || (!was_ok && strcmp(d->health, msg) != 0)) {
			if (msg[0])
				log_warn("CDI device %s is not usable: %s", d->name, msg);
			else if (!was_ok)
				log_info("CDI device %s is usable again", d->name);
		}
		free(d->health);
		d->health = msg[0] ? strdup(msg) : NULL;
		/* its own nodes' numbers, for aliases and aggregates */
		const struct cdi_edits *own = &sp->devices[d->index].edits;
		free(d->nodes);
		d->nodes = calloc(own->n_nodes + 1, sizeof(*d->nodes));
		d->n_nodes = 0;
		for (size_t k = 0; d->nodes && d->health == NULL && k < own->n_nodes; k++) {
			struct cdi_device_node copy = own->nodes[k];
			char ignored[512];
			if (fill_node(&copy, ignored, sizeof(ignored)) == 0 && copy.type != 'p')
				d->nodes[d->n_nodes++] = (unsigned long long)makedev((unsigned)copy.major,
										      (unsigned)copy.minor) * 2 +
							 (copy.type == 'b');
		}
		if (d->nodes)
			qsort(d->nodes, d->n_nodes, sizeof(*d->nodes), cmp_ull);
	}
}

int cdi_registry_init(struct cdi_registry *r, const char *const *dirs, size_t n_dirs, struct berth_err *err)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->dirs = calloc(n_dirs + 1, sizeof(*r->dirs));
	if (r->dirs == NULL)
		return berth_err_set(err, ENOMEM, "CDI registry");
	for (; r->n_dirs < n_dirs; r->n_dirs++)
		if ((r->dirs[r->n_dirs] = strdup(dirs[r->n_dirs])) == NULL)
			return berth_err_set(err, ENOMEM, "CDI registry");
	cdi_registry_refresh(r);
	return 0;
}

void cdi_registry_free(struct cdi_registry *r)
{
	clear_loaded(r);
	for (size_t i = 0; i < r->n_dirs; i++)
		free(r->dirs[i]);
	free(r->dirs);
	free(r->signature);
	pthread_mutex_destroy(&r->mu);
	memset(r, 0, sizeof(*r));
}

static bool refresh_locked(struct cdi_registry *r)
{
	char *sig = signature_now(r);
	bool changed = sig == NULL || r->signature == NULL || strcmp(sig, r->signature) != 0;
	if (changed) {
		free(r->signature);
		r->signature = sig;
		reload(r);
	} else {
		free(sig);
	}
	check_health(r);
	return changed;
}

bool cdi_registry_refresh(struct cdi_registry *r)
{
	pthread_mutex_lock(&r->mu);
	bool changed = refresh_locked(r);
	pthread_mutex_unlock(&r->mu);
	return changed;
}

void cdi_names_free(char **names)
{
	for (size_t i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

static const struct cdi_registry_device *find(const struct cdi_registry *r, const char *name)
{
	for (size_t i = 0; i < r->n_devices; i++)
		if (strcmp(r->devices[i].name, name) == 0)
			return &r->devices[i];
	return NULL;
}

int cdi_registry_usable(struct cdi_registry *r, const char *kind, char *const *held, size_t n_held, char ***names,
			size_t *n)
{
	pthread_mutex_lock(&r->mu);
	refresh_locked(r);
	*n = 0;
	*names = calloc(r->n_devices + 1, sizeof(**names));
	int rc = *names ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < r->n_devices; i++) {
		const struct cdi_registry_device *d = &r->devices[i];
		if (d->health != NULL || strcmp(d->kind, kind) != 0)
			continue;
		bool skip = false;
		for (size_t j = 0; j < r->n_devices && !skip; j++) {
			const struct cdi_registry_device *o = &r->devices[j];
			if (j == i || o->n_nodes == 0 || strcmp(o->kind, kind) != 0)
				continue;
			if (same_nodes(d, o))
				skip = j < i; /* an alias: the first name stands for the device */
			else if (nodes_within(o, d))
				skip = true;  /* an aggregate of o and others */
		}
		/* held: by this name, an alias, or a device sharing a node */
		for (size_t h = 0; h < n_held && !skip; h++) {
			const struct cdi_registry_device *o = find(r, held[h]);
			skip = strcmp(held[h], d->name) == 0 || (o != NULL && overlaps(d, o));
		}
		if (skip)
			continue;
		if (((*names)[*n] = strdup(d->name)) == NULL)
			rc = -1;
		else
			(*n)++;
	}
	pthread_mutex_unlock(&r->mu);
	if (rc < 0) {
		cdi_names_free(*names);
		*names = NULL;
		*n = 0;
	}
	return rc;
}

bool cdi_registry_has_kind(struct cdi_registry *r, const char *kind)
{
	pthread_mutex_lock(&r->mu);
	bool has = false;
	for (size_t i = 0; i < r->n_devices && !has; i++)
		has = strcmp(r->devices[i].kind, kind) == 0;
	pthread_mutex_unlock(&r->mu);
	return has;
}

int cdi_registry_edits(struct cdi_registry *r, char *const *names, size_t n, struct cdi_edits *out,
		       struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&r->mu);
	refresh_locked(r);
	int rc = 0;
	bool *spec_done = calloc(r->n_specs + 1, sizeof(bool));
	if (spec_done == NULL)
		rc = berth_err_set(err, ENOMEM, "CDI edits");
	/* the specs' own edits first, once each, then the devices' */
	for (int pass = 0; pass < 2 && rc == 0; pass++)
		for (size_t i = 0; i < n && rc == 0; i++) {
			const struct cdi_registry_device *d = find(r, names[i]);
			if (d == NULL) {
				rc = berth_err_set(err, 0,
						   "CDI device %s, reserved for this instance, is defined by no CDI spec in %s%s%s "
						   "any more; restore its spec or delete and re-create the endpoint.",
						   names[i], r->dirs[0], r->n_dirs > 1 ? " or " : "",
						   r->n_dirs > 1 ? r->dirs[1] : "");
				break;
			}
			if (d->health != NULL) {
				rc = berth_err_set(err, 0, "CDI device %s is not usable: %s.", d->name, d->health);
				break;
			}
			const struct cdi_spec *sp = &r->specs[d->spec].spec;
			if (pass == 0 && !spec_done[d->spec]) {
				spec_done[d->spec] = true;
				if (cdi_edits_append(out, &sp->edits) < 0)
					rc = berth_err_set(err, ENOMEM, "CDI edits");
			} else if (pass == 1 && cdi_edits_append(out, &sp->devices[d->index].edits) < 0) {
				rc = berth_err_set(err, ENOMEM, "CDI edits");
			}
		}
	free(spec_done);
	pthread_mutex_unlock(&r->mu);
	/* one node and one mount per container path: a later edit replaces an
	 * earlier one, as the CDI specification's runtimes do */
	size_t kept = 0;
	for (size_t k = 0; rc == 0 && k < out->n_nodes; k++) {
		bool later = false;
		for (size_t j = k + 1; j < out->n_nodes && !later; j++)
			later = strcmp(out->nodes[j].path, out->nodes[k].path) == 0;
		if (later)
			cdi_node_clear(&out->nodes[k]);
		else
			out->nodes[kept++] = out->nodes[k];
	}
	if (rc == 0)
		out->n_nodes = kept;
	kept = 0;
	for (size_t k = 0; rc == 0 && k < out->n_mounts; k++) {
		bool later = false;
		for (size_t j = k + 1; j < out->n_mounts && !later; j++)
			later = strcmp(out->mounts[j].container_path, out->mounts[k].container_path) == 0;
		if (later)
			cdi_mount_clear(&out->mounts[k]);
		else
			out->mounts[kept++] = out->mounts[k];
	}
	if (rc == 0)
		out->n_mounts = kept;
	char msg[512];
	for (size_t k = 0; rc == 0 && k < out->n_nodes; k++)
		if (fill_node(&out->nodes[k], msg, sizeof(msg)) < 0)
			rc = berth_err_set(err, 0, "CDI: %s", msg);
	if (rc < 0)
		cdi_edits_free(out);
	return rc;
}

int cdi_registry_list(struct cdi_registry *r, struct cdi_registry_listing *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&r->mu);
	refresh_locked(r);
	int rc = 0;
	out->devices = calloc(r->n_devices + 1, sizeof(*out->devices));
	out->problems = calloc(r->n_problems + 1, sizeof(*out->problems));
	if (out->devices == NULL || out->problems == NULL)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < r->n_devices; i++) {
		const struct cdi_registry_device *d = &r->devices[i];
		struct cdi_registry_device *c = &out->devices[out->n_devices++];
		c->name = strdup(d->name);
		c->kind = strdup(d->kind);
		c->spec_path = strdup(d->spec_path);
		c->health = d->health ? strdup(d->health) : NULL;
		if (!c->name || !c->kind || !c->spec_path || (d->health && !c->health))
			rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < r->n_problems; i++) {
		struct cdi_registry_problem *p = &out->problems[out->n_problems++];
		p->path = strdup(r->problems[i].path);
		p->message = strdup(r->problems[i].message);
		if (!p->path || !p->message)
			rc = -1;
	}
	pthread_mutex_unlock(&r->mu);
	if (rc < 0)
		cdi_registry_listing_free(out);
	return rc;
}

void cdi_registry_listing_free(struct cdi_registry_listing *l)
{
	for (size_t i = 0; i < l->n_devices; i++) {
		free(l->devices[i].name);
		free(l->devices[i].kind);
		free(l->devices[i].spec_path);
		free(l->devices[i].health);
	}
	free(l->devices);
	for (size_t i = 0; i < l->n_problems; i++) {
		free(l->problems[i].path);
		free(l->problems[i].message);
	}
	free(l->problems);
	memset(l, 0, sizeof(*l));
}
