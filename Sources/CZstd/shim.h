#ifndef ARCHWAY_CZSTD_SHIM_H
#define ARCHWAY_CZSTD_SHIM_H

#include <zstd.h>

#endif
