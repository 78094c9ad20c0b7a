// glibc's allocator tuning (mallopt, M_ARENA_MAX, M_MMAP_THRESHOLD): <malloc.h> is not part of Swift's Glibc module.
#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
#include <malloc.h>
#endif
