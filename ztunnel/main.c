/* ztunnel: wires the modules together in a fixed order; no logic lives here. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		puts("ztunnel 0.1.0");
		return 0;
	}
	fprintf(stderr, "usage: ztunnel [--version]\n");
	return 2;
}
