/* Replays inputs through one fuzz target without libFuzzer: each argument is a file or a
 * directory of files, each file is fed once to LLVMFuzzerTestOneInput. Built with the normal
 * compiler (and under make asan with the sanitizers), so `make test` checks every committed
 * corpus file, crash reproducers included. Prints "<n> inputs" and exits 0 unless a file
 * cannot be read; a bug shows as a crash or a sanitizer report. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#define REPLAY_MAX_INPUT (4u << 20)

static int replay_file(const char *path, size_t *count)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(REPLAY_MAX_INPUT);
	if (!buf)
		goto out;
	n = fread(buf, 1, REPLAY_MAX_INPUT, f);
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		goto out;
	}
	/* An exact-size copy, so ASan sees reads past the input's end. */
	uint8_t *in = malloc(n ? n : 1);
	if (!in)
		goto out;
	memcpy(in, buf, n);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
	(*count)++;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_path(const char *path, size_t *count)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, count);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				abort();
			names = nn;
		}
		size_t len = strlen(path) + strlen(e->d_name) + 2;
		names[n] = malloc(len);
		if (!names[n])
			abort();
		snprintf(names[n++], len, "%s/%s", path, e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	for (size_t i = 0; i < n; i++) {
		if (getenv("REPLAY_VERBOSE"))
			fprintf(stderr, "replay: %s\n", names[i]);
		if (replay_path(names[i], count) < 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int rc = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) < 0)
			rc = 1;
	printf("%zu inputs\n", count);
	return rc;
}
