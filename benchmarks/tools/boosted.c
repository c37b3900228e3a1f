/* boosted N COMMAND [ARG...]: runs COMMAND at nice -N with the kernel's shortest scheduler slice
 * (0.1 ms, EEVDF 6.12+), the scheduling ErrorWatch gives its read and decode threads with
 * [Watch] PriorityBoost=N (src/ErrorWatch.Core/Daemon/EventThreadPriority.cs). run-latency.sh starts
 * the C floors under it so that they and the daemon's event threads compete for the CPUs on equal
 * terms: the comparison then measures ErrorWatch's work, not who the scheduler favours.
 * struct sched_attr and the call are <linux/sched/types.h> and sched_setattr(2). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

struct sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: boosted N COMMAND [ARG...]\n");
        return 2;
    }
    struct sched_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.sched_nice = -atoi(argv[1]);
    attr.sched_runtime = 100000;
    if (attr.sched_nice != 0 && syscall(SYS_sched_setattr, 0, &attr, 0) != 0) {
        perror("boosted: sched_setattr");
        return 1;
    }
    execvp(argv[2], argv + 2);
    perror("boosted: exec");
    return 127;
}
