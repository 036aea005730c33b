/* Temporary manifest files for the fake-istiod model tests. */
#include "mesh_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *write_file(const char *dir, const char *name, const char *text)
{
	char *path = NULL;
	ck_assert_int_gt(asprintf(&path, "%s/%s", dir, name), 0);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* Removes every "<dir>/" from err. */
static void strip_dir(char *err, const char *dir)
{
	size_t dl = strlen(dir);
	for (char *p; (p = strstr(err, dir)) && p[dl] == '/';)
		memmove(p, p + dl + 1, strlen(p + dl + 1) + 1);
}

int fx_mesh_load(struct fi_mesh *m, const char *const *texts, size_t n, const char *addrs,
                 char *err, size_t errlen)
{
	return fx_mesh_load_opts(m, texts, n, addrs, NULL, err, errlen);
}

int fx_mesh_load_opts(struct fi_mesh *m, const char *const *texts, size_t n, const char *addrs,
                      const struct fi_mesh_opts *base, char *err, size_t errlen)
{
	char dir[] = "/tmp/fimesh-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char **paths = calloc(n + 1, sizeof(*paths));
	ck_assert_ptr_nonnull(paths);
	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), i ? "m%zu.yaml" : "m.yaml", i + 1);
		paths[i] = write_file(dir, name, texts[i]);
	}
	char *apath = addrs ? write_file(dir, "addrs", addrs) : NULL;
	struct fi_mesh_opts o = base ? *base : (struct fi_mesh_opts){0};
	o.addresses_file = apath;
	int rc = fi_mesh_load(m, (const char *const *)paths, n, &o, err, errlen);
	strip_dir(err, dir);
	for (size_t i = 0; i < n; i++) {
		unlink(paths[i]);
		free(paths[i]);
	}
	if (apath)
		unlink(apath);
	free(apath);
	free(paths);
	rmdir(dir);
	return rc;
}

void fx_mesh_convert(const char *yaml, struct fi_mesh *m, struct fi_resources *r)
{
	char err[512] = "";
	int rc = fx_mesh_load(m, &yaml, 1, NULL, err, sizeof(err));
	ck_assert_msg(rc == 0, "load: %s", err);
	rc = fi_convert(m, NULL, r, err, sizeof(err));
	ck_assert_msg(rc == 0, "convert: %s", err);
}
