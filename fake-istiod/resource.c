/* Lifetime of a served xDS resource: every field is owned by the resource. */
#include "fake-istiod/resource.h"

#include <stdlib.h>
#include <string.h>

void fi_resource_clear(struct fi_resource *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->version);
	free(r->data);
	memset(r, 0, sizeof(*r));
}
