"""Thread priority: inference runs below the event loop.

On a saturated core the event loop (gRPC, HTTP, health checks) competes for
the CPUs with the inference threads, and a health probe that waits behind a
batch answers late. Linux schedules threads, each with its own nice value:
inference threads a few steps nicer than the loop still get every CPU cycle
the loop does not want, but the loop runs as soon as it has work.

Raising a thread's nice value needs no privilege (only lowering it back
does), so this works with runAsNonRoot, no capabilities and a read-only root
file system. A new thread inherits the nice value of the thread that creates
it: that is how ONNX Runtime's intra-op pool threads, which a session starts
when it is created, get theirs (tandem.process opens the sessions on a
thread that lowered its own priority first).
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

# The highest nice value Linux accepts.
MAX_NICE = 19


def lower_thread_priority(steps: int) -> int:
    """Raise the calling thread's nice value by ``steps`` (capped at 19); return the new value
    (0 when the platform refused, see below).

    Best effort: a platform without per-thread priorities, or a sandbox that
    refuses the call, leaves the thread as it was (logged), since serving at
    equal priority is slower to answer health checks but still correct.
    """
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if steps <= 0:
            return current
        wanted = min(MAX_NICE, current + steps)
        os.setpriority(os.PRIO_PROCESS, tid, wanted)
    except (AttributeError, OSError) as exc:  # AttributeError: no getpriority (not POSIX)
        log.warning("cannot lower the priority of an inference thread", extra={"error": repr(exc)})
        return 0
    return wanted
