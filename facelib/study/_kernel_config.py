"""IPython kernel config that the pipeline hands to each notebook kernel it starts.

Two messages of every clean run bury real warnings, and this filter drops those two and
nothing else: ipykernel warns "Kernel is running over TCP without encryption" once per kernel,
whenever the connection is plain TCP on localhost (how papermill always starts kernels); and
jupyter_client interrupts every kernel (SIGINT) before its shutdown request, so a kernel still
finishing its last reply logs "ERROR | KeyboardInterrupt caught in kernel." (a user's Ctrl-C is
reported by the pipeline itself). It is read as a config file
(``--IPKernelApp.extra_config_file``), not imported.
"""

import logging


#: The starts of the messages dropped.
NOISE = ("Kernel is running over TCP without encryption", "KeyboardInterrupt caught in kernel")


class KernelNoise(logging.Filter):
    """Drops ipykernel's plain-TCP warning and its shutdown-interrupt error; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(NOISE)


if "get_config" in globals():  # executed by traitlets as a config file
    c = get_config()  # noqa: F821
    c.IPKernelApp.logging_config = {
        "filters": {"facelib_kernel_noise": {"()": KernelNoise}},
        "handlers": {"console": {"filters": ["facelib_kernel_noise"]}},
    }
