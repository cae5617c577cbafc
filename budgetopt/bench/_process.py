"""Worker processes that do not outlive the process that started them."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """In a worker process: end it as soon as its parent is gone (killed, crashed), so that
    an interrupted build or simulation leaves no orphan spending the CPU on units nobody
    will write. Call it from the pool's initializer."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
