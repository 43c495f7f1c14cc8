#ifndef CSYSFSMAGIC_H
#define CSYSFSMAGIC_H

// The preload library of `apmatrix exec --udev` (libapmatrix-sysfs-magic.so):
// it exports statfs, fstatfs, statfs64 and fstatfs64 in place of libc's, and
// nothing to Swift. See sysfs_magic.c.

#endif
