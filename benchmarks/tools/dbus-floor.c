/* The D-Bus floor for the latency benchmark: what a minimal C daemon needs to put an error on the bus.
 *
 * usage: dbus-floor BUS_ADDRESS PATH SYSFS_DIR DEVICE
 * Marks the filesystem holding PATH for FAN_FS_ERROR (as ../shared/anchors/fanotify-reader.c does) and, for
 * every event, as soon as read(2) returns: re-reads errors_count and the last-error group from SYSFS_DIR
 * (kept open, pread, as ErrorWatch does) and emits io.github.errorwatch.ErrorWatch1.Manager.ReportAdded
 * with an a{sv} of the same shape and size as ErrorWatch's report (source "c-floor", so observers can
 * tell it from the daemon's), then flushes. No store, no JSON, no thread hand-off: the difference between
 * this row and the C reader's is what D-Bus itself costs here (sd-bus marshalling, dbus-daemon routing,
 * the client's wake-up); the daemon's row minus this one is ErrorWatch's own cost.
 * Prints "ready" once marked and connected. Runs until SIGTERM. Needs CAP_SYS_ADMIN.
 * Built with cc -O2 against libsystemd.so.0; the sd-bus calls are declared as <systemd/sd-bus.h> (252) does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <time.h>
#include <unistd.h>

typedef struct sd_bus sd_bus;
typedef struct sd_bus_message sd_bus_message;
int sd_bus_new(sd_bus **ret);
int sd_bus_set_address(sd_bus *bus, const char *address);
int sd_bus_set_bus_client(sd_bus *bus, int b);
int sd_bus_start(sd_bus *bus);
int sd_bus_flush(sd_bus *bus);
int sd_bus_send(sd_bus *bus, sd_bus_message *m, uint64_t *cookie);
int sd_bus_message_new_signal(sd_bus *bus, sd_bus_message **m, const char *path, const char *interface, const char *member);
int sd_bus_message_append(sd_bus_message *m, const char *types, ...);
int sd_bus_message_open_container(sd_bus_message *m, char type, const char *contents);
int sd_bus_message_close_container(sd_bus_message *m);
sd_bus_message *sd_bus_message_unref(sd_bus_message *m);

static const char *const Kept[] = { "errors_count", "last_error_time", "last_error_func", "last_error_line",
    "last_error_ino", "last_error_block", "last_error_errcode" };
enum { KEPT = sizeof Kept / sizeof *Kept };

static void text(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    if (n < 0)
        n = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        n--;
    buf[n] = 0;
}

static void s(sd_bus_message *m, const char *key, const char *value) { sd_bus_message_append(m, "{sv}", key, "s", value); }
static void x(sd_bus_message *m, const char *key, int64_t value) { sd_bus_message_append(m, "{sv}", key, "x", value); }
static void b(sd_bus_message *m, const char *key, int value) { sd_bus_message_append(m, "{sv}", key, "b", value); }
static void open_dict(sd_bus_message *m, const char *key)
{
    sd_bus_message_open_container(m, 'e', "sv");
    sd_bus_message_append(m, "s", key);
    sd_bus_message_open_container(m, 'v', "a{sv}");
    sd_bus_message_open_container(m, 'a', "{sv}");
}
static void close_dict(sd_bus_message *m)
{
    sd_bus_message_close_container(m);
    sd_bus_message_close_container(m);
    sd_bus_message_close_container(m);
}

/* One report: the fields ErrorWatch's fanotify report for a whole-filesystem ext4 error carries. */
static int emit(sd_bus *bus, const char *device, const int *fds, int err, unsigned count, uint64_t seq)
{
    char f[KEPT][128], id[64];
    sd_bus_message *m;
    for (int i = 0; i < KEPT; i++)
        text(fds[i], f[i], sizeof f[i]);
    snprintf(id, sizeof id, "c-floor-%llu", (unsigned long long)seq);
    int r = sd_bus_message_new_signal(bus, &m, "/io/github/errorwatch/ErrorWatch1", "io.github.errorwatch.ErrorWatch1.Manager", "ReportAdded");
    if (r < 0)
        return r;
    sd_bus_message_append(m, "o", "/io/github/errorwatch/ErrorWatch1");
    sd_bus_message_open_container(m, 'a', "{sv}");
    s(m, "type", "report");
    s(m, "id", id);
    s(m, "time", "2026-11-21T15:33:56.307009Z");
    s(m, "host", "vm");
    s(m, "source", "c-floor");
    s(m, "event", "corruption");
    s(m, "severity", "critical");
    s(m, "summary", "ext4 /dev/loop0 on /tmp/x reports metadata corruption (EUCLEAN/EFSCORRUPTED) (whole filesystem), 1 error");
    open_dict(m, "filesystem");
    s(m, "device", device);
    s(m, "major_minor", "7:0");
    s(m, "uuid", "2f0c4b7e-8d51-4f7c-9f5e-3c4b2a1d0e9f");
    s(m, "type", "ext4");
    sd_bus_message_append(m, "{sv}", "mountpoints", "as", 1, "/tmp/x");
    s(m, "fsid", "44445555:66667777");
    close_dict(m);
    open_dict(m, "error");
    x(m, "errno", err);
    x(m, "raw_errno", err);
    s(m, "name", "EUCLEAN");
    s(m, "description", "Structure needs cleaning");
    s(m, "meaning", "metadata corruption");
    s(m, "alias", "EFSCORRUPTED");
    x(m, "count", count);
    close_dict(m);
    open_dict(m, "object");
    s(m, "scope", "filesystem");
    s(m, "handle_type", "0xff");
    s(m, "handle", "");
    close_dict(m);
    s(m, "decoder", "ext4");
    open_dict(m, "details");
    open_dict(m, "ext4");
    s(m, "errors_behavior", "continue");
    x(m, "errors_count", strtoll(f[0], NULL, 10));
    for (int g = 0; g < 2; g++) {
        open_dict(m, g == 0 ? "first_error" : "last_error");
        s(m, "time", f[1]);
        s(m, "function", f[2]);
        x(m, "line", strtoll(f[3], NULL, 10));
        x(m, "inode", strtoll(f[4], NULL, 10));
        x(m, "block", strtoll(f[5], NULL, 10));
        s(m, "code", f[6]);
        close_dict(m);
    }
    close_dict(m);
    close_dict(m);
    open_dict(m, "process");
    x(m, "pid", 1);
    b(m, "errorwatch", 0);
    close_dict(m);
    x(m, "kernel_events", 1);
    sd_bus_message_close_container(m);
    r = sd_bus_send(bus, m, NULL);
    sd_bus_message_unref(m);
    if (r >= 0)
        r = sd_bus_flush(bus);
    return r;
}

int main(int argc, char **argv)
{
    sd_bus *bus;
    int r, fds[KEPT];
    if (argc != 5) {
        fprintf(stderr, "usage: %s BUS_ADDRESS PATH SYSFS_DIR DEVICE\n", argv[0]);
        return 2;
    }
    signal(SIGTERM, SIG_DFL);
    int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC, O_RDONLY);
    if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_FS_ERROR, AT_FDCWD, argv[2])) {
        perror("fanotify");
        return 1;
    }
    for (int i = 0; i < KEPT; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", argv[3], Kept[i]);
        if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            perror(path);
            return 1;
        }
    }
    if ((r = sd_bus_new(&bus)) < 0 || (r = sd_bus_set_address(bus, argv[1])) < 0 || (r = sd_bus_set_bus_client(bus, 1)) < 0
        || (r = sd_bus_start(bus)) < 0 || (r = sd_bus_flush(bus)) < 0) {
        fprintf(stderr, "connecting to %s: %s\n", argv[1], strerror(-r));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    static unsigned char buf[65536];
    uint64_t seq = 0;
    for (;;) {
        ssize_t len = read(fan, buf, sizeof buf);
        if (len <= 0) {
            perror("read");
            return 1;
        }
        for (size_t off = 0; (size_t)len - off >= 24;) {
            uint32_t event_len;
            uint16_t meta_len;
            memcpy(&event_len, buf + off, 4);
            memcpy(&meta_len, buf + off + 6, 2);
            if (event_len < 24 || event_len > (size_t)len - off)
                break;
            int32_t err = 0;
            uint32_t count = 0;
            for (size_t p = off + meta_len; p + 4 <= off + event_len;) {
                uint16_t rec_len;
                memcpy(&rec_len, buf + p + 2, 2);
                if (rec_len < 4)
                    break;
                if (buf[p] == 5) {
                    memcpy(&err, buf + p + 4, 4);
                    memcpy(&count, buf + p + 8, 4);
                }
                p += rec_len;
            }
            if ((r = emit(bus, argv[4], fds, err < 0 ? -err : err, count, ++seq)) < 0) {
                fprintf(stderr, "emit: %s\n", strerror(-r));
                return 1;
            }
            off += event_len;
        }
    }
}
