/* Timestamps every ReportAdded signal of io.github.errorwatch.ErrorWatch1 on a bus (latency benchmark).
 *
 * usage: dbus-observer BUS_ADDRESS OUTFILE
 * Writes one line per signal: "<CLOCK_MONOTONIC ns at receipt> <error.count> <source> <device>", the
 * format of dbus-observer.py, and prints "ready" on stdout once the match rule is in place. Runs until
 * SIGTERM. The timestamp is taken when sd-bus hands over the message, before its body is read.
 *
 * The C client the D-Bus row is measured with, as the C reader is for fanotify: the Python observer's
 * main loop and libdbus add their own ~0.1-0.2 ms, which is the observer's cost, not the daemon's
 * (docs/performance.md shows both). Built with cc -O2 against libsystemd.so.0 without its headers
 * (libsystemd-dev need not be installed): the few sd-bus calls used are declared below as
 * <systemd/sd-bus.h> (systemd 252) declares them; their ABI is stable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sd_bus sd_bus;
typedef struct sd_bus_message sd_bus_message;
typedef struct sd_bus_slot sd_bus_slot;
typedef struct sd_bus_error sd_bus_error;
typedef int (*sd_bus_message_handler_t)(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

int sd_bus_new(sd_bus **ret);
int sd_bus_set_address(sd_bus *bus, const char *address);
int sd_bus_set_bus_client(sd_bus *bus, int b);
int sd_bus_start(sd_bus *bus);
int sd_bus_add_match(sd_bus *bus, sd_bus_slot **slot, const char *match, sd_bus_message_handler_t callback, void *userdata);
int sd_bus_process(sd_bus *bus, sd_bus_message **r);
int sd_bus_wait(sd_bus *bus, uint64_t timeout_usec);
int sd_bus_message_enter_container(sd_bus_message *m, char type, const char *contents);
int sd_bus_message_exit_container(sd_bus_message *m);
int sd_bus_message_read_basic(sd_bus_message *m, char type, void *p);
int sd_bus_message_peek_type(sd_bus_message *m, char *type, const char **contents);
int sd_bus_message_skip(sd_bus_message *m, const char *types);
int sd_bus_message_rewind(sd_bus_message *m, int complete);

static FILE *out;
static volatile sig_atomic_t stop;

static void on_term(int sig) { (void)sig; stop = 1; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* In an a{sv} the cursor is on: finds KEY, enters its variant and returns 1 (caller exits the variant,
 * the entry and the array), or returns 0 with the array exited. */
static int find_key(sd_bus_message *m, const char *key)
{
    const char *k;
    if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
        return 0;
    while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
        if (sd_bus_message_read_basic(m, 's', &k) <= 0)
            return 0;
        if (strcmp(k, key) == 0) {
            char type;
            const char *contents;
            if (sd_bus_message_peek_type(m, &type, &contents) <= 0 || sd_bus_message_enter_container(m, 'v', contents) <= 0)
                return 0;
            return 1;
        }
        sd_bus_message_skip(m, "v");
        sd_bus_message_exit_container(m);
    }
    sd_bus_message_exit_container(m);
    return 0;
}

static void leave_found(sd_bus_message *m)
{
    sd_bus_message_exit_container(m); /* v */
    sd_bus_message_exit_container(m); /* e */
    while (sd_bus_message_skip(m, "{sv}") > 0)
        ;
    sd_bus_message_exit_container(m); /* a */
}

static int on_report(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
    uint64_t t = now_ns();
    const char *path, *value;
    char source[64] = "?", device[64] = "?";
    int64_t count = 0;
    (void)userdata;
    (void)error;
    if (sd_bus_message_read_basic(m, 'o', &path) <= 0)
        return 0;
    /* The report dictionary is read three times from its start; sd-bus messages rewind on demand. */
    const char *names[] = { "source", "filesystem", "error" };
    for (int i = 0; i < 3; i++) {
        sd_bus_message_rewind(m, 1);
        sd_bus_message_skip(m, "o");
        if (!find_key(m, names[i]))
            continue;
        if (i == 0) {
            if (sd_bus_message_read_basic(m, 's', &value) > 0)
                snprintf(source, sizeof source, "%s", value);
        } else if (find_key(m, i == 1 ? "device" : "count")) {
            char type;
            const char *contents;
            sd_bus_message_peek_type(m, &type, &contents);
            if (i == 1 && type == 's' && sd_bus_message_read_basic(m, 's', &value) > 0)
                snprintf(device, sizeof device, "%s", value);
            else if (i == 2 && (type == 'x' || type == 't'))
                sd_bus_message_read_basic(m, type, &count);
            leave_found(m);
        }
        leave_found(m);
    }
    fprintf(out, "%llu %lld %s %s\n", (unsigned long long)t, (long long)count, source, device);
    fflush(out);
    return 0;
}

int main(int argc, char **argv)
{
    sd_bus *bus;
    int r;
    if (argc != 3) {
        fprintf(stderr, "usage: %s BUS_ADDRESS OUTFILE\n", argv[0]);
        return 2;
    }
    out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    signal(SIGTERM, on_term);
    if ((r = sd_bus_new(&bus)) < 0 || (r = sd_bus_set_address(bus, argv[1])) < 0 || (r = sd_bus_set_bus_client(bus, 1)) < 0
        || (r = sd_bus_start(bus)) < 0) {
        fprintf(stderr, "connecting to %s: %s\n", argv[1], strerror(-r));
        return 1;
    }
    r = sd_bus_add_match(bus, NULL,
        "type='signal',interface='io.github.errorwatch.ErrorWatch1.Manager',member='ReportAdded'", on_report, NULL);
    if (r < 0) {
        fprintf(stderr, "AddMatch: %s\n", strerror(-r));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (!stop) {
        r = sd_bus_process(bus, NULL);
        if (r < 0) {
            fprintf(stderr, "process: %s\n", strerror(-r));
            return 1;
        }
        if (r > 0)
            continue;
        r = sd_bus_wait(bus, UINT64_MAX);
        if (r < 0 && r != -EINTR) {
            fprintf(stderr, "wait: %s\n", strerror(-r));
            return 1;
        }
    }
    return 0;
}
