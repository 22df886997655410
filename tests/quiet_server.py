"""A threading HTTP server for test fakes that does not print a client's hang-up.

``socketserver`` prints a traceback to stderr whenever a handler fails, and
a client that gives up mid-reply (a timeout or retry test, by design) makes
the handler's write fail with a broken pipe. Printed from the server thread,
that traceback lands in the stderr a CLI test captures and asserts on. A
hang-up is the client's choice, not a server fault; any other handler error
is still printed.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any

_HANG_UPS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], _HANG_UPS):
            return
        super().handle_error(request, client_address)
