"""IPython kernel config that the pipeline hands to each notebook kernel it starts.

Two messages of every clean run bury real warnings, and this filter drops those two and
nothing else: ipykernel warns "Kernel is running over TCP without encryption" once per kernel,
whenever the connection is plain TCP on localhost (how papermill always starts kernels); and
jupyter_client interrupts every kernel (SIGINT) before its shutdown request, so a kernel still
finishing its last reply logs "ERROR | KeyboardInterrupt caught in kernel." (a user's Ctrl-C is
reported by the pipeline itself). When the user's Ctrl-C stops a run mid-cell, papermill
interrupts the kernel and shuts it down, and the interrupted cell's reply meets a socket the
shutdown has closed: ipykernel logs "Exception in message handler:" with a 15-line ZMQError
(ENOTSOCK, "Socket operation on non-socket") traceback; that record is dropped too, and only
that one: a message handler's other errors pass. It is read as a config file
(``--IPKernelApp.extra_config_file``), not imported.
"""

import errno
import logging


#: The starts of the messages dropped.
NOISE = ("Kernel is running over TCP without encryption", "KeyboardInterrupt caught in kernel")


def _reply_to_a_closed_socket(record: logging.LogRecord) -> bool:
    """A message handler's error that is the kernel's sockets closed by its shutdown under it."""
    exc = record.exc_info[1] if record.exc_info else None
    return (record.getMessage().startswith("Exception in message handler") and exc is not None
            and type(exc).__name__ == "ZMQError" and getattr(exc, "errno", None) == errno.ENOTSOCK)


class KernelNoise(logging.Filter):
    """Drops ipykernel's plain-TCP warning, its shutdown-interrupt error and the reply that the
    shutdown's closed socket refuses; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage().startswith(NOISE) or _reply_to_a_closed_socket(record))


if "get_config" in globals():  # executed by traitlets as a config file
    c = get_config()  # noqa: F821
    c.IPKernelApp.logging_config = {
        "filters": {"facelib_kernel_noise": {"()": KernelNoise}},
        "handlers": {"console": {"filters": ["facelib_kernel_noise"]}},
    }
