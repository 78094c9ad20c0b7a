// libpq: plain C API, callable from Swift as is; the header is wrapped for the module map.
#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
