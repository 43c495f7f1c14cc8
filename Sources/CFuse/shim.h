#ifndef CFUSE_SHIM_H
#define CFUSE_SHIM_H
// FUSE_USE_VERSION must precede the headers; 314 is the API of Debian 12's libfuse 3.14.
#define FUSE_USE_VERSION 314
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <errno.h>
#include <sys/stat.h>
#endif
