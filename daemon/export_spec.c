/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/export_spec.h"

int export_spec_parse(const char *s, struct export_spec *spec, char *err,
		      size_t errlen)
{
	const char *eq = strchr(s, '=');
	const char *colon = strchr(s, ':');
	const char *backend = s;
	char berr[200];

	memset(spec, 0, sizeof(*spec));
	if (!colon) {
		snprintf(err, errlen, "'%s' is not [NAME=]BACKEND:TARGET[,key=value...]", s);
		return -EINVAL;
	}
	/* A name has neither '=' nor ':', so a '=' after the first ':' is a key's. */
	if (eq && eq < colon) {
		if (eq == s) {
			snprintf(err, errlen, "'%s': the export name is empty", s);
			return -EINVAL;
		}
		backend = eq + 1;
	}
	if (backend_parse(backend, &spec->params, berr, sizeof(berr))) {
		snprintf(err, errlen, "'%s': %s", s, berr);
		return -EINVAL;
	}
	spec->name = backend == s ? strdup(EXPORT_SPEC_UNNAMED) :
		     strndup(s, (size_t)(eq - s));
	if (!spec->name) {
		backend_params_free(&spec->params);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void export_spec_free(struct export_spec *spec)
{
	free(spec->name);
	free(spec->description);
	backend_params_free(&spec->params);
	memset(spec, 0, sizeof(*spec));
}
