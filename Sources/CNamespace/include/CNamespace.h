#ifndef CNAMESPACE_H
#define CNAMESPACE_H

// unshare(2) and its flags, which glibc declares only under _GNU_SOURCE
// (Swift's Glibc module does not see them).

/// unshare(2): 0, or -1 with errno set.
int cnamespace_unshare(int flags);

/// CLONE_NEWNS: a new mount namespace.
extern const int cnamespace_clone_newns;

#endif
