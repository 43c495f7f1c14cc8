/*
 * The floor for any FUSE-served sysfs tree: a minimal libfuse3 filesystem
 * with the same habits as apmatrix (high-level API, multithreaded loop,
 * direct I/O, zero cache timeouts, content rendered once per open, EACCES
 * at open) and the same path depth, but no model behind it. Every path is a
 * directory except these names at depth 5 or more (an mdev's attributes are
 * at /devices/vfio_ap/matrix/<uuid>/<name>):
 *   assign_adapter, unassign_adapter, create, remove  (write-only, accept anything)
 *   matrix                                             (read-only, "05.0004\n")
 *   matrix_full                                        (read-only, 4095 bytes)
 * Build: gcc -O2 floorfs.c $(pkg-config --cflags --libs fuse3) -o floorfs
 */
#define FUSE_USE_VERSION 314
#include <fuse.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char full[4096];

static const char *leaf(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int kind(const char *path) { /* 0 dir, 1 write-only, 2 small, 3 full */
    int depth = 0;
    for (const char *p = path; *p; p++) depth += *p == '/';
    if (depth < 5) return 0;
    const char *n = leaf(path);
    if (!strcmp(n, "assign_adapter") || !strcmp(n, "unassign_adapter") || !strcmp(n, "create") || !strcmp(n, "remove"))
        return 1;
    if (!strcmp(n, "matrix")) return 2;
    if (!strcmp(n, "matrix_full")) return 3;
    return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    (void)conn;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    return NULL;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    (void)fi;
    memset(st, 0, sizeof *st);
    switch (kind(path)) {
    case 0: st->st_mode = S_IFDIR | 0755; st->st_nlink = 2; break;
    case 1: st->st_mode = S_IFREG | 0200; st->st_nlink = 1; st->st_size = 4096; break;
    default: st->st_mode = S_IFREG | 0444; st->st_nlink = 1; st->st_size = 4096; break;
    }
    return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi) {
    int k = kind(path), acc = fi->flags & O_ACCMODE;
    if (k == 0) return -EISDIR;
    if (k == 1 && acc != O_WRONLY) return -EACCES;
    if (k != 1 && acc != O_RDONLY) return -EACCES;
    fi->direct_io = 1;
    if (k != 1) {
        const char *text = k == 2 ? "05.0004\n" : full;
        fi->fh = (uint64_t)(uintptr_t)strdup(text);
    }
    return 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi) {
    (void)path;
    free((void *)(uintptr_t)fi->fh);
    return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)path;
    const char *text = (const char *)(uintptr_t)fi->fh;
    size_t len = strlen(text);
    if ((size_t)off >= len) return 0;
    if (size > len - off) size = len - off;
    memcpy(buf, text + off, size);
    return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)path; (void)buf; (void)off; (void)fi;
    return (int)size;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
    (void)size; (void)fi;
    return kind(path) == 1 ? 0 : -EACCES;
}

int main(int argc, char *argv[]) {
    for (int i = 0; i < 4095; i++) full[i] = "05.0004\n"[i % 8];
    full[4095] = 0;
    struct fuse_operations ops = {
        .init = fs_init, .getattr = fs_getattr, .open = fs_open, .release = fs_release,
        .read = fs_read, .write = fs_write, .truncate = fs_truncate,
    };
    return fuse_main(argc, argv, &ops, NULL);
}
