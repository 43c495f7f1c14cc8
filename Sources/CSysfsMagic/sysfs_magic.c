// LD_PRELOAD library for `apmatrix exec --udev`: sd-device (libudev, udevadm,
// libvirt) accepts a device directory only if fstatfs() on it says sysfs
// (SYSFS_MAGIC), and the kernel answers FUSE_SUPER_MAGIC for the FUSE tree
// bound over /sys. Here the statfs family asks libc first and, only for a
// FUSE filesystem whose path is /sys or below it, reports SYSFS_MAGIC
// instead; every other answer, errno included, is libc's unchanged
// (docs/udev-libvirt.md §1.1). The statvfs family has no filesystem type,
// so it needs nothing.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#define SYSFS_MAGIC 0x62656572
#define FUSE_SUPER_MAGIC 0x65735546

static int is_sysfs_path(const char *path) {
    return strcmp(path, "/sys") == 0 || strncmp(path, "/sys/", 5) == 0;
}

// What the fd is open on, as /proc/self/fd says (O_PATH fds included).
static int fd_is_under_sys(int fd) {
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = 0;
    return is_sysfs_path(target);
}

// The canonical path, so that relative paths and symlinks count by where they lead.
static int path_is_under_sys(const char *path) {
    char *resolved = realpath(path, NULL);
    if (resolved == NULL) return 0;
    int under = is_sysfs_path(resolved);
    free(resolved);
    return under;
}

// One wrapper per libc entry point: the real call, then the type fixed when
// it is FUSE under /sys. errno is the real call's whatever the check did.
#define SYSFS_MAGIC_WRAPPER(name, buffer, argument_type, under_sys)                \
    int name(argument_type argument, buffer *b) {                                  \
        static int (*real)(argument_type, buffer *);                               \
        if (real == NULL) real = (int (*)(argument_type, buffer *))dlsym(RTLD_NEXT, #name); \
        if (real == NULL) { errno = ENOSYS; return -1; }                           \
        int r = real(argument, b);                                                 \
        if (r == 0 && b->f_type == FUSE_SUPER_MAGIC) {                             \
            int saved = errno;                                                     \
            if (under_sys(argument)) b->f_type = SYSFS_MAGIC;                      \
            errno = saved;                                                         \
        }                                                                          \
        return r;                                                                  \
    }

SYSFS_MAGIC_WRAPPER(statfs, struct statfs, const char *, path_is_under_sys)
SYSFS_MAGIC_WRAPPER(statfs64, struct statfs64, const char *, path_is_under_sys)
SYSFS_MAGIC_WRAPPER(fstatfs, struct statfs, int, fd_is_under_sys)
SYSFS_MAGIC_WRAPPER(fstatfs64, struct statfs64, int, fd_is_under_sys)
