/* hotfuncs SYMS OUT CMD...: the functions of a static binary (PIE or not) that CMD's processes
 * run, in the order they first run, one name a line, written to OUT. Used by bench/order.sh to write
 * link/hot.order (build.rs turns it into the linker's layout of the hot code).
 *
 * SYMS lists the binary's functions, "ADDRESS NAME" a line (hex, from nm). Every function's
 * first byte becomes a breakpoint (int3) after the exec; the first hit of one records it and
 * puts the byte back, in that process only. Forks inherit the breakpoints left (their memory
 * is a copy), so the container init and exec'd children are followed too, up to their exec of
 * another program (a process that execs the same binary again is re-armed). When CMD's own
 * process exits, the processes it leaves running (the init of `create`) are stopped, get every
 * original byte back and are let go. Unlike single-stepping this costs one stop per function,
 * not per instruction. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

struct sym {
    unsigned long addr;
    char *name;
    unsigned char orig;
    int seen;
};

static struct sym *syms;
static size_t nsyms;
static char exe[PATH_MAX];
/* Where the binary is loaded: 0 for a fixed-address executable, the load address of a PIE. */
static unsigned long bias;

static int cmp(const void *a, const void *b)
{
    unsigned long x = ((const struct sym *)a)->addr, y = ((const struct sym *)b)->addr;
    return x < y ? -1 : x > y;
}

static struct sym *lookup(unsigned long addr)
{
    size_t lo = 0, hi = nsyms;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (syms[mid].addr == addr)
            return &syms[mid];
        if (syms[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int mem_open(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/mem", pid);
    return open(p, O_RDWR);
}

/* Arms every function not seen yet in PID's memory. */
static void arm(pid_t pid)
{
    int fd = mem_open(pid);
    if (fd < 0) {
        perror("hotfuncs: open mem");
        exit(2);
    }
    unsigned char cc = 0xcc;
    for (size_t i = 0; i < nsyms; i++) {
        if (syms[i].seen)
            continue;
        off_t at = (off_t)(syms[i].addr + bias);
        if (pread(fd, &syms[i].orig, 1, at) != 1 || pwrite(fd, &cc, 1, at) != 1) {
            fprintf(stderr, "hotfuncs: cannot arm %s at %#lx: %s\n", syms[i].name, syms[i].addr, strerror(errno));
            exit(2);
        }
    }
    close(fd);
}

/* The load address of a PIE (ELF type ET_DYN): the start of its mapping at file offset 0. */
static unsigned long load_bias(pid_t pid)
{
    FILE *f = fopen(exe, "r");
    unsigned char h[18];
    if (!f || fread(h, 1, sizeof h, f) != sizeof h) {
        fprintf(stderr, "hotfuncs: cannot read the ELF header of %s\n", exe);
        exit(2);
    }
    fclose(f);
    if (h[16] != 3) /* ET_DYN */
        return 0;
    char p[64], line[PATH_MAX + 128];
    snprintf(p, sizeof p, "/proc/%d/maps", pid);
    f = fopen(p, "r");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long start, off;
        char path[PATH_MAX] = "";
        if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %4095s", &start, &off, path) == 3 && off == 0 &&
            strcmp(path, exe) == 0) {
            fclose(f);
            return start;
        }
    }
    fprintf(stderr, "hotfuncs: %s is not mapped in %d\n", exe, pid);
    exit(2);
}

/* The traced processes still alive. */
static pid_t live[4096];
static size_t nlive;

static void add_live(pid_t pid)
{
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == pid)
            return;
    if (nlive == sizeof live / sizeof *live) {
        fprintf(stderr, "hotfuncs: too many processes\n");
        exit(2);
    }
    live[nlive++] = pid;
}

static void drop_live(pid_t pid)
{
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == pid) {
            live[i] = live[--nlive];
            return;
        }
}

/* Puts every original byte back in PID's memory (some of them may still be int3 there even
 * if another process ran that function). */
static void disarm(pid_t pid)
{
    int fd = mem_open(pid);
    if (fd < 0)
        return;
    for (size_t i = 0; i < nsyms; i++)
        if (pwrite(fd, &syms[i].orig, 1, (off_t)(syms[i].addr + bias)) != 1)
            break;
    close(fd);
}

static int same_exe(pid_t pid)
{
    char p[64], t[PATH_MAX];
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    ssize_t n = readlink(p, t, sizeof t - 1);
    if (n < 0)
        return 0;
    t[n] = 0;
    return strcmp(t, exe) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: hotfuncs SYMS OUT CMD [ARG...]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror("hotfuncs: SYMS");
        return 2;
    }
    size_t cap = 0;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = 0;
        sp[1 + strcspn(sp + 1, "\n")] = 0;
        if (nsyms == cap) {
            cap = cap ? cap * 2 : 4096;
            syms = realloc(syms, cap * sizeof *syms);
        }
        syms[nsyms].addr = strtoul(line, NULL, 16);
        syms[nsyms].name = strdup(sp + 1);
        syms[nsyms].seen = 0;
        nsyms++;
    }
    fclose(f);
    qsort(syms, nsyms, sizeof *syms, cmp);
    /* Aliases (one address, several names): keep the first. */
    size_t k = 0;
    for (size_t i = 0; i < nsyms; i++)
        if (k == 0 || syms[k - 1].addr != syms[i].addr)
            syms[k++] = syms[i];
    nsyms = k;
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror("hotfuncs: OUT");
        return 2;
    }
    if (!realpath(argv[3], exe)) {
        perror("hotfuncs: CMD");
        return 2;
    }

    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(argv[3], argv + 3);
        perror("hotfuncs: exec");
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st)) {
        fprintf(stderr, "hotfuncs: %s did not start\n", argv[3]);
        return 2;
    }
    ptrace(PTRACE_SETOPTIONS, pid, 0,
           PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC);
    bias = load_bias(pid);
    arm(pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    int status = 0, main_done = 0;
    add_live(pid);
    for (;;) {
        if (main_done && nlive > 0) {
            /* Stop the ones left; each is let go at its SIGSTOP below. */
            for (size_t i = 0; i < nlive; i++)
                kill(live[i], SIGSTOP);
            main_done = 2;
        }
        pid_t w = waitpid(-1, &st, __WALL);
        if (w < 0) {
            if (errno == ECHILD)
                break;
            continue;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            drop_live(w);
            if (w == pid) {
                status = st;
                main_done = 1;
            }
            if (main_done && nlive == 0)
                break;
            continue;
        }
        add_live(w);
        int sig = WSTOPSIG(st), event = st >> 16;
        if (main_done == 2 && !event && sig == SIGSTOP) {
            disarm(w);
            ptrace(PTRACE_DETACH, w, 0, 0);
            drop_live(w);
            if (nlive == 0)
                break;
            continue;
        }
        if (event == PTRACE_EVENT_EXEC) {
            if (same_exe(w)) {
                /* A PIE exec'd again lands elsewhere: all processes must share one bias. */
                if (load_bias(w) != bias) {
                    fprintf(stderr, "hotfuncs: %s re-exec'd at another address\n", exe);
                    exit(2);
                }
                arm(w);
            } else {
                ptrace(PTRACE_DETACH, w, 0, 0);
                drop_live(w);
                if (main_done && nlive == 0)
                    break;
                continue;
            }
            sig = 0;
        } else if (event) {
            sig = 0;
        } else if (sig == SIGTRAP) {
            struct user_regs_struct r;
            ptrace(PTRACE_GETREGS, w, 0, &r);
            struct sym *s = lookup(r.rip - 1 - bias);
            if (s) {
                int fd = mem_open(w);
                unsigned char now = 0;
                off_t at = (off_t)(s->addr + bias);
                if (fd >= 0 && pread(fd, &now, 1, at) == 1 && now == 0xcc)
                    pwrite(fd, &s->orig, 1, at);
                if (fd >= 0)
                    close(fd);
                if (!s->seen) {
                    s->seen = 1;
                    fprintf(out, "%s\n", s->name);
                }
                r.rip--;
                ptrace(PTRACE_SETREGS, w, 0, &r);
                sig = 0;
            }
        } else if (sig == SIGSTOP) {
            /* A new tracee's first stop (or a real SIGSTOP: this tool does not need it). */
            sig = 0;
        }
        ptrace(PTRACE_CONT, w, 0, sig);
    }
    if (fclose(out) != 0) {
        perror("hotfuncs: OUT");
        return 2;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
