/* Whole-file helpers for small state kept on disk (CA root, signing secrets): bounded reads
 * and atomic replacement. Invariant: a reader sees either the old file or the complete new
 * one, never a partial write, and a new file has its final mode before it gets its name. */
#ifndef ZT_FILE_H
#define ZT_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Reads the regular file at path into a new NUL-terminated buffer *out of *len bytes (the
 * NUL not counted; the caller frees). Returns 0, -ENOENT when missing, -EINVAL when not a
 * regular file, ZT_E_TOOBIG when larger than max bytes, or another -errno. *out is NULL on
 * error. */
int zt_file_read(const char *path, size_t max, char **out, size_t *len);

/* Replaces (or creates) path with data[0..len): writes a temporary file with the given mode
 * in the same directory, syncs it, renames it over path and syncs the directory.
 * Returns 0 or -errno; on error path is unchanged and no temporary file is left. */
int zt_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Creates directory dir (its parent must exist) with mode unless it exists already.
 * Returns 0, -ENOTDIR when something else has that name, or another -errno. */
int zt_file_mkdir(const char *dir, mode_t mode);

#endif
