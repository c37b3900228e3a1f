/* Raises ext4 errors through sysfs and timestamps each one, for the latency benchmark.
 *
 * usage: trigger SYSFS_FILE COUNT SPACING_US
 * For each of COUNT errors: takes CLOCK_MONOTONIC, then pwrite(2)s "1" to SYSFS_FILE
 * (/sys/fs/ext4/<dev>/trigger_fs_error: ext4_error() runs inside the write, which queues the
 * FAN_FS_ERROR event before returning), prints "<ns before the write>", then sleeps until the next
 * slot (slots are SPACING_US apart from the start, so a slow write does not stretch the run).
 * Build: cc -O2 -o trigger trigger.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc < 4) { fprintf(stderr, "usage: %s SYSFS_FILE COUNT SPACING_US\n", argv[0]); return 2; }
	int fd = open(argv[1], O_WRONLY | O_CLOEXEC);
	if (fd < 0) { perror(argv[1]); return 1; }
	long count = atol(argv[2]);
	uint64_t spacing = (uint64_t)atol(argv[3]) * 1000ull, start = now_ns();
	for (long i = 0; i < count; i++) {
		uint64_t slot = start + (uint64_t)i * spacing;
		struct timespec until = { (time_t)(slot / 1000000000ull), (long)(slot % 1000000000ull) };
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {}
		uint64_t t = now_ns();
		if (pwrite(fd, "1", 1, 0) != 1) { perror("pwrite"); return 1; }
		printf("%llu\n", (unsigned long long)t);
	}
	fflush(stdout);
	return 0;
}
