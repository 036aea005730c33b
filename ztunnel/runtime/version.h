/* The release this tree builds: shown by --version, /config_dump and istio_build. */
#ifndef ZT_VERSION_H
#define ZT_VERSION_H

#define ZT_VERSION "0.1.0"

#endif
