/* Unit test runner: every tests/unit/test_NAME.c defines NAME_suite(); the build lists
 * them in suites.h. CK_RUN_SUITE=NAME (and CK_RUN_CASE) run one suite or case.
 * Ends with "unit: N passed, N failed, N skipped" for tests/run.sh; skipped cases (root-only
 * ones without root) are listed as "SKIP suite/name" and never counted as passed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "loop_fixture.h"

#define SUITE(name) Suite *name##_suite(void);
#include "suites.h"
#undef SUITE

int main(void)
{
	SRunner *sr = srunner_create(NULL);
	int run, failed;

#define SUITE(name) srunner_add_suite(sr, name##_suite());
#include "suites.h"
#undef SUITE
	srunner_run_all(sr, CK_NORMAL);
	run = srunner_ntests_run(sr);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("unit: %d passed, %d failed, %d skipped\n", run - failed, failed, fx_skipped());
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
