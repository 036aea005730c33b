/* Control commands of sim-cni, one text line each (the lab's interface to the node agent):
 *   add UID NETNS_PATH NAMESPACE NAME SERVICE_ACCOUNT
 *   del UID
 *   list
 * Pure: a line in, a validated command or a one-line reason out. Every field is bounded so an
 * AddWorkload built from them always fits the 1024-byte ZDS datagram. */
#ifndef CNI_CMD_H
#define CNI_CMD_H

#include <stddef.h>

#define CNI_LINE_MAX 1024 /* bytes in a command line, newline excluded */
#define CNI_UID_MAX  128
#define CNI_PATH_MAX 512
#define CNI_NS_MAX   63  /* Kubernetes namespace: a DNS label */
#define CNI_NAME_MAX 253 /* pod and service account names: DNS subdomains */

enum cni_cmd_type { CNI_CMD_ADD, CNI_CMD_DEL, CNI_CMD_LIST };

struct cni_cmd {
	enum cni_cmd_type type;
	char uid[CNI_UID_MAX + 1];
	char netns[CNI_PATH_MAX + 1];
	char ns[CNI_NS_MAX + 1];
	char name[CNI_NAME_MAX + 1];
	char sa[CNI_NAME_MAX + 1];
};

/* Parses line[0..len) (no newline; a trailing CR is ignored). Words are separated by spaces or
 * tabs; each must be printable ASCII. Returns 0 with *cmd filled, or ZT_E_PARSE with the
 * reason (no "error:" prefix) in err. */
int cni_cmd_parse(const char *line, size_t len, struct cni_cmd *cmd, char *err, size_t errlen);

#endif
