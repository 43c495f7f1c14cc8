#ifndef CNAMESPACE_H
#define CNAMESPACE_H

#include <stddef.h>
#include <sys/types.h>

// What `apmatrix exec` needs that Swift's Glibc module does not declare:
// unshare(2) and its flags (glibc declares them only under _GNU_SOURCE),
// passing a file descriptor over a unix socket (the CMSG macros), and the
// kernel's uevent netlink socket (linux/netlink.h).

/// unshare(2): 0, or -1 with errno set.
int cnamespace_unshare(int flags);

/// CLONE_NEWNS: a new mount namespace.
extern const int cnamespace_clone_newns;
/// CLONE_NEWNET: a new network namespace.
extern const int cnamespace_clone_newnet;

/// Sends `fd` over the unix socket `channel` (SCM_RIGHTS): 0, or -1 with errno set.
int cnamespace_send_fd(int channel, int fd);
/// Receives a descriptor sent with `cnamespace_send_fd`: the new fd (close-on-exec),
/// or -1 (errno set; 0 when the peer closed the channel without sending one).
int cnamespace_receive_fd(int channel);

/// A NETLINK_KOBJECT_UEVENT socket (close-on-exec) in the caller's network namespace, or -1.
int cnamespace_uevent_socket(void);
/// Sends one message to the multicast `group` of that socket's namespace
/// (1 the kernel's, 2 udev's): the bytes sent, or -1 with errno set.
ssize_t cnamespace_uevent_send(int fd, const void *message, size_t length, unsigned group);

#endif
