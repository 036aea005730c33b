/* Control line parsing: split into at most 7 words, check the verb's arity, then copy each
 * field after checking its length, so nothing is truncated silently. */
#include "cmd.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime/err.h"

#define MAX_WORDS 7

struct word {
	const char *p;
	size_t len;
};

#define reject(err, errlen, ...) zt_errf(ZT_E_PARSE, (err), (errlen), __VA_ARGS__)

static bool word_is(struct word w, const char *s)
{
	return w.len == strlen(s) && memcmp(w.p, s, w.len) == 0;
}

static int copy(char *dst, size_t max, struct word w, const char *what, char *err, size_t errlen)
{
	if (w.len > max)
		return reject(err, errlen, "%s longer than %zu bytes", what, max);
	memcpy(dst, w.p, w.len);
	dst[w.len] = 0;
	return 0;
}

int cni_cmd_parse(const char *line, size_t len, struct cni_cmd *cmd, char *err, size_t errlen)
{
	struct word w[MAX_WORDS];
	size_t n = 0, i = 0;
	int rc;

	memset(cmd, 0, sizeof(*cmd));
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > CNI_LINE_MAX)
		return reject(err, errlen, "line longer than %d bytes", CNI_LINE_MAX);
	while (i < len) {
		size_t start;

		if (line[i] == ' ' || line[i] == '\t') {
			i++;
			continue;
		}
		start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t') {
			unsigned char c = (unsigned char)line[i];

			if (c < 0x21 || c > 0x7e)
				return reject(err, errlen,
				              "byte 0x%02x at column %zu is not printable ASCII", c,
				              i + 1);
			i++;
		}
		if (n == MAX_WORDS)
			return reject(err, errlen, "too many words");
		w[n++] = (struct word){line + start, i - start};
	}
	if (n == 0)
		return reject(err, errlen, "empty command (add, del, list)");
	if (word_is(w[0], "list")) {
		if (n != 1)
			return reject(err, errlen, "usage: list");
		cmd->type = CNI_CMD_LIST;
		return 0;
	}
	if (word_is(w[0], "del")) {
		if (n != 2)
			return reject(err, errlen, "usage: del UID");
		cmd->type = CNI_CMD_DEL;
		return copy(cmd->uid, CNI_UID_MAX, w[1], "UID", err, errlen);
	}
	if (!word_is(w[0], "add"))
		return reject(err, errlen, "unknown command \"%.*s\" (add, del, list)",
		              (int)(w[0].len > 32 ? 32 : w[0].len), w[0].p);
	if (n != 6)
		return reject(err, errlen,
		              "usage: add UID NETNS_PATH NAMESPACE NAME SERVICE_ACCOUNT");
	cmd->type = CNI_CMD_ADD;
	if ((rc = copy(cmd->uid, CNI_UID_MAX, w[1], "UID", err, errlen)) < 0 ||
	    (rc = copy(cmd->netns, CNI_PATH_MAX, w[2], "NETNS_PATH", err, errlen)) < 0 ||
	    (rc = copy(cmd->ns, CNI_NS_MAX, w[3], "NAMESPACE", err, errlen)) < 0 ||
	    (rc = copy(cmd->name, CNI_NAME_MAX, w[4], "NAME", err, errlen)) < 0 ||
	    (rc = copy(cmd->sa, CNI_NAME_MAX, w[5], "SERVICE_ACCOUNT", err, errlen)) < 0)
		return rc;
	if (cmd->netns[0] != '/')
		return reject(err, errlen, "NETNS_PATH must be an absolute path");
	return 0;
}
