"""LitServer, stopped gracefully by SIGTERM: the requests in flight are answered, then it exits.

LitServer stops on its shutdown event by closing the response queues, then its HTTP servers, then its
inference workers: a request still being answered would lose its answer. Here SIGTERM sets that event,
and the HTTP servers stop first (uvicorn's own graceful stop: no new connections, the open ones
answered), while the inference workers still run.
"""

import os
import signal
import sys
import threading

import litserve as ls


class TextclsServer(ls.LitServer):
    """A LitServer that SIGTERM stops gracefully, and that says when it is ready.

    Args:
        ready_line: Printed to stderr once every inference worker has loaded the model.
        server: LitServer's arguments.
    """

    def __init__(self, *args, ready_line: str = "", **server):
        super().__init__(*args, **server)
        self.ready_line = ready_line
        self.main_pid = os.getpid()

    def run(self, *args, **kwargs) -> None:
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            super().run(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum, frame) -> None:
        if os.getpid() != self.main_pid:
            # a process forked from this one (an HTTP server re-raises SIGTERM after its graceful stop)
            raise SystemExit(0)
        if self._shutdown_event is None:  # still starting: nothing is in flight
            raise KeyboardInterrupt
        # from a thread of its own: the main thread may be inside a call on the event's manager connection
        threading.Thread(target=self._shutdown_event.set, daemon=True).start()

    def verify_worker_status(self) -> None:
        super().verify_worker_status()
        if self.ready_line:
            print(self.ready_line, file=sys.stderr, flush=True)

    def _perform_graceful_shutdown(
        self, manager, uvicorn_workers: dict, shutdown_reason: str = "normal"
    ) -> None:
        for worker in uvicorn_workers.values():
            if worker.is_alive():
                worker.terminate()  # SIGTERM: uvicorn answers the requests it holds, then exits
        for worker in uvicorn_workers.values():
            worker.join(timeout=self.uvicorn_graceful_timeout)
            if worker.is_alive():
                worker.kill()
        super()._perform_graceful_shutdown(manager, {}, shutdown_reason)
