// core/cpu/backend_cpu.h — the CPU backend's table, for the registry (core/backend.c) and the
// unit tests. Code above core/ opens backends with backend_open() (core/backend.h).
#ifndef LORALAB_BACKEND_CPU_H
#define LORALAB_BACKEND_CPU_H

#include "core/backend.h"

const Backend *backend_cpu(void);

#endif
