/* Fuzz target: fake-istiod's mesh loader (fake-istiod/mesh.h) on a user's Kubernetes-style
 * YAML, then the conversion into the xDS resources it would serve. Input: the YAML file
 * (handed over as an in-memory file). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake-istiod/convert.h"
#include "fake-istiod/mesh.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	if ((fd = memfd_create("fuzz-mesh.yaml", 0)) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fi_mesh m = {0};
	struct fi_resources r = {0};
	const char *files[1] = {path};
	char err[512];

	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	if (fi_mesh_load(&m, files, 1, NULL, err, sizeof(err)) == 0) {
		fi_convert(&m, NULL, &r, err, sizeof(err));
		fi_resources_clear(&r);
	}
	fi_mesh_clear(&m);
	return 0;
}
