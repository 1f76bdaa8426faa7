"""Starts the measured processes on behalf of the benchmark, from a small process of its own.

A child's ru_maxrss counts the memory of the process it was forked from: Linux records the
parent's high-water RSS when the child calls exec (fork, vfork and posix_spawn alike). Forked
from the benchmark itself (which holds the core, the R4B models, the generated rows), every
child would report at least that much. Forked from this process (the standard library only, run
with `python -I -S`), a child's peak RSS is its own.

Protocol: one JSON object per line on standard input, {"together": [request, ...]}, each
request {"command", "cwd", "env", "stdout", "stderr", "timeout"}: every command is started at
once. One JSON answer per line on standard output once all have ended: {"seconds": from the
first start to the last end, "runs": [{"seconds", "cpu", "maxrss", "status"}, ...]} (cpu in
seconds, user and system; maxrss in bytes). End of input ends the process.
"""

import json
import os
import sys
import time


def start(request):
    """The measured program forked and started with its own files: (pid, when it started)."""
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: its own files, then the measured program
        try:
            os.chdir(request["cwd"])
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.execvpe(request["command"][0], request["command"], request["env"])
        except OSError as error:
            os.write(2, f"cannot run {request['command'][0]}: {error}\n".encode())
        finally:
            os._exit(127)
    os.close(out)
    os.close(err)
    return pid, started


def answer(started, status, usage):
    return {
        "seconds": time.perf_counter() - started,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss": usage.ru_maxrss * 1024,
        "status": os.waitstatus_to_exitcode(status),
    }


def run_together(requests):
    """Every request started at once, each answered as it ends (killed past its timeout)."""
    running = {}
    for index, request in enumerate(requests):
        pid, started = start(request)
        running[pid] = (index, started, started + request["timeout"])
    first = min(started for _, started, _ in running.values())
    answers = [None] * len(requests)
    while running:
        for pid, (index, started, deadline) in list(running.items()):
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if not done and time.perf_counter() > deadline:
                os.kill(pid, 9)
                done, status, usage = os.wait4(pid, 0)
            if done:
                answers[index] = answer(started, status, usage)
                del running[pid]
        time.sleep(0.001)
    return {"seconds": time.perf_counter() - first, "runs": answers}


def main():
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(run_together(json.loads(line)["together"])) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
