"""Worker processes that do not outlive the process that started them."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(parent: int, poll_seconds: float = 1.0) -> None:
    """In a worker process: end it as soon as its parent ``parent`` (the pid the parent
    passed, ``os.getpid()`` there) is gone (killed, crashed), so that an interrupted build
    or simulation leaves no orphan spending the CPU on units nobody will write. Call it
    from the pool's initializer. The pid comes from the parent because a worker that
    starts (imports torch) after its parent died has already been re-parented."""
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
