#!/usr/bin/env python3
"""Sort the samples of a perf recording of a cache server by what they were
doing, per smtp(8) cycle: the scheduler (waiting in epoll_pwait, parking and
waking goroutines), system calls made by the request path, and user-space
request work, with the leaf functions of the last.

    perf record -e cpu-clock -F 10000 -g -p PID -o NAME.data -- sleep 6
    perf-classify.py NAME.data CYCLES [HZ]

CYCLES is the number of cycles the server answered while perf recorded
(cycles/s times seconds); HZ the sampling frequency (10000).
"""
import collections
import subprocess
import sys

path, cycles = sys.argv[1], float(sys.argv[2])
us_per_sample = 1e6 / float(sys.argv[3] if len(sys.argv) > 3 else 10000)
out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym"],
                     capture_output=True, text=True, check=True).stdout
cats, leaves, total = collections.Counter(), collections.Counter(), 0
for sample in out.split("\n\n"):
    frames = [l.strip().split(" ", 1)[-1] for l in sample.strip().split("\n") if l.strip()]
    if not frames:
        continue
    total += 1
    stack = " ".join(frames)
    if "RawSyscall" in stack or ("Syscall6" in stack and "netpoll" not in stack):
        cat = "system calls of the request path"
    elif "park_m" in stack or "findRunnable" in stack or "schedule" in stack:
        cat = "scheduler (epoll_pwait, park, wake)"
    elif "serve" in stack or "request" in stack:
        cat = "user-space request work"
        leaves[frames[0]] += 1
    else:
        cat = "other"
    cats[cat] += 1
per = lambda n: n * us_per_sample / cycles
for cat, n in cats.most_common():
    print(f"{cat:40s} {per(n):6.1f} us/cycle")
print(f"{'total':40s} {per(total):6.1f} us/cycle ({total} samples)")
print("user-space request work, leaf functions:")
for leaf, n in leaves.most_common(25):
    print(f"  {per(n):5.2f} {leaf[:100]}")
