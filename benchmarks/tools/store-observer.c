/* Timestamps every record appended to ErrorWatch's report store (latency benchmark).
 *
 * usage: store-observer STATE_DIR OUTFILE
 * inotify (IN_MODIFY, IN_CREATE) on STATE_DIR/reports: the store appends each report with one write(2),
 * so IN_MODIFY arrives when the record is in the file. Each new whole record (src/ErrorWatch.Core/Store/
 * StoreRecord.cs: a 20-byte header, magic "EWR1" and the JSON's length first, then the JSON) gives one
 * line "<CLOCK_MONOTONIC ns at the inotify wake-up> <error.count> <source> <device>", the format of
 * store-observer.py; prints "ready" on stdout once watching. Runs until SIGTERM.
 *
 * The C observer the store row is measured with, as the C reader is for fanotify and dbus-observer.c
 * for D-Bus: the Python observer's interpreter adds its own time between the wake-up and the clock
 * read, which is the observer's cost, not the daemon's (docs/performance.md shows both rows).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEGMENTS 4096
#define MAGIC 0x31525745u

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct { char name[64]; off_t offset; } segments[MAX_SEGMENTS];
static int nsegments;

static off_t *offset_of(const char *name)
{
    for (int i = 0; i < nsegments; i++)
        if (strcmp(segments[i].name, name) == 0)
            return &segments[i].offset;
    if (nsegments == MAX_SEGMENTS || strlen(name) >= sizeof segments[0].name)
        return NULL;
    strcpy(segments[nsegments].name, name);
    segments[nsegments].offset = 0;
    return &segments[nsegments++].offset;
}

/* The string value of the first "key":"..." at or after from, copied into out (no escapes expected
 * in source and device names); "?" when absent. */
static void string_after(const char *json, const char *from, const char *key, char *out, size_t size)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = strstr(from ? from : json, pattern);
    snprintf(out, size, "?");
    if (!p)
        return;
    p += strlen(pattern);
    const char *end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= size)
        return;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = 0;
}

static void scan(const char *dir, const char *name, uint64_t t, FILE *out)
{
    off_t *offset = offset_of(name);
    if (!offset)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    for (;;) {
        unsigned char header[20];
        if (pread(fd, header, sizeof header, *offset) != (ssize_t)sizeof header)
            break;
        uint32_t magic, length;
        memcpy(&magic, header, 4);
        memcpy(&length, header + 4, 4);
        if (magic != MAGIC || length > (1u << 24))
            break;
        char *json = malloc(length + 1);
        if (!json || pread(fd, json, length, *offset + 20) != (ssize_t)length) {
            free(json);
            break;
        }
        json[length] = 0;
        char source[64], device[256];
        string_after(json, NULL, "source", source, sizeof source);
        string_after(json, strstr(json, "\"filesystem\":"), "device", device, sizeof device);
        const char *error = strstr(json, "\"error\":{");
        const char *count = error ? strstr(error, "\"count\":") : NULL;
        fprintf(out, "%llu %llu %s %s\n", (unsigned long long)t,
                count ? strtoull(count + 8, NULL, 10) : 0ull, source, device);
        free(json);
        *offset += 20 + length;
    }
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: store-observer STATE_DIR OUTFILE\n");
        return 2;
    }
    char reports[4096];
    snprintf(reports, sizeof reports, "%s/reports", argv[1]);
    mkdir(argv[1], 0700);
    mkdir(reports, 0700);
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    setvbuf(out, NULL, _IOLBF, 0);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, reports, IN_MODIFY | IN_CREATE) < 0) {
        perror("inotify");
        return 1;
    }
    /* What is already there is not part of the measurement. */
    DIR *d = opendir(reports);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0) {
            char path[4096];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", reports, e->d_name);
            off_t *offset = offset_of(e->d_name);
            if (offset && stat(path, &st) == 0)
                *offset = st.st_size;
        }
    }
    if (d)
        closedir(d);
    signal(SIGTERM, on_term);
    printf("ready\n");
    fflush(stdout);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buffer[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!stop) {
        if (poll(&p, 1, 200) <= 0)
            continue;
        uint64_t t = now_ns();
        ssize_t n = read(fd, buffer, sizeof buffer);
        for (char *q = buffer; n > 0 && q < buffer + n;) {
            struct inotify_event *ev = (struct inotify_event *)q;
            size_t len = ev->len ? strlen(ev->name) : 0;
            if (len > 4 && strcmp(ev->name + len - 4, ".log") == 0)
                scan(reports, ev->name, t, out);
            q += sizeof *ev + ev->len;
        }
    }
    return 0;
}
