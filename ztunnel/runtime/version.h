/* The release this tree builds: shown by --version, /config_dump and istio_build. */
#ifndef ZT_VERSION_H
#define ZT_VERSION_H

#define ZT_VERSION "0.1.0"

/* The commit, passed by the build for the files that print it. */
#ifndef ZT_GIT_REVISION
#define ZT_GIT_REVISION "unknown"
#endif

#endif
