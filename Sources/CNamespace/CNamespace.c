#define _GNU_SOURCE
#include <sched.h>
#include "CNamespace.h"

int cnamespace_unshare(int flags) { return unshare(flags); }

const int cnamespace_clone_newns = CLONE_NEWNS;
