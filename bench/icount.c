/* icount CMD...: the number of user-mode instructions that CMD's process executes from its
 * exec to its exit (not its children's), counted by single-stepping it under ptrace. Slow,
 * but the same whatever the machine's load. Used by bench/callgrind.sh for `berth run`, whose
 * container init cannot run under valgrind 3.19 (it does not know openat2, and a fork of a
 * valgrind process stays under valgrind). Prints the count on stderr's last line as
 * "instructions: N"; exits with CMD's status. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: icount CMD [ARG...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("icount: fork");
        return 2;
    }
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execvp(argv[1], argv + 1);
        perror("icount: exec");
        _exit(127);
    }
    int st;
    /* The first stop is the SIGTRAP after the exec: counting starts there. */
    if (waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st)) {
        fprintf(stderr, "icount: %s did not start\n", argv[1]);
        return 2;
    }
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_EXITKILL);
    unsigned long long n = 0;
    int sig = 0;
    for (;;) {
        if (ptrace(PTRACE_SINGLESTEP, pid, 0, sig) < 0) {
            perror("icount: PTRACE_SINGLESTEP");
            return 2;
        }
        if (waitpid(pid, &st, 0) < 0) {
            perror("icount: waitpid");
            return 2;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st))
            break;
        /* A single-step trap is one instruction; any other signal is passed on. */
        sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
        if (sig == 0)
            n++;
    }
    fprintf(stderr, "instructions: %llu\n", n);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
