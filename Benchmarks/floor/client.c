/*
 * The client side of the mount benchmarks, a process of its own like `echo`
 * and `cat`: N operations on one mdev directory of a mount, each timed with
 * CLOCK_MONOTONIC, then the median and the 10th/90th percentiles in ns.
 *   store DIR N   open+write("6")+close, alternating DIR/assign_adapter and DIR/unassign_adapter
 *   read DIR N    open+read to EOF+close of DIR/matrix
 * Build: gcc -O2 client.c -o client
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: client store|read DIR N\n"); return 2; }
    int store = !strcmp(argv[1], "store"), n = atoi(argv[3]);
    char assign[4096], unassign[4096], matrix[4096], buf[8192];
    snprintf(assign, sizeof assign, "%s/assign_adapter", argv[2]);
    snprintf(unassign, sizeof unassign, "%s/unassign_adapter", argv[2]);
    snprintf(matrix, sizeof matrix, "%s/matrix", argv[2]);
    long long *t = malloc(sizeof *t * n);
    for (int i = -n / 10; i < n; i++) {   /* the first tenth warms up */
        long long start = now();
        if (store) {
            int fd = open(i & 1 ? unassign : assign, O_WRONLY);
            if (fd < 0 || write(fd, "6", 1) != 1) { perror("store"); return 1; }
            close(fd);
        } else {
            int fd = open(matrix, O_RDONLY);
            if (fd < 0) { perror("open"); return 1; }
            while (read(fd, buf, sizeof buf) > 0) {}
            close(fd);
        }
        if (i >= 0) t[i] = now() - start;
    }
    qsort(t, n, sizeof *t, cmp);
    printf("%lld %lld %lld\n", t[n / 2], t[n / 10], t[n * 9 / 10]);
    return 0;
}
