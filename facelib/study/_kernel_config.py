"""IPython kernel config that the pipeline hands to each notebook kernel it starts.

ipykernel warns "Kernel is running over TCP without encryption" once per kernel, on
stderr, whenever the connection is plain TCP on localhost, which is how papermill always
starts kernels; nine notebooks print it nine times and bury real warnings. This filter
drops that one message and nothing else. It is read as a config file
(``--IPKernelApp.extra_config_file``), not imported.
"""

import logging


class NoTcpEncryptionWarning(logging.Filter):
    """Drops ipykernel's plain-TCP warning; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "running over TCP without encryption" not in record.getMessage()


if "get_config" in globals():  # executed by traitlets as a config file
    c = get_config()  # noqa: F821
    c.IPKernelApp.logging_config = {
        "filters": {"facelib_no_tcp_warning": {"()": NoTcpEncryptionWarning}},
        "handlers": {"console": {"filters": ["facelib_no_tcp_warning"]}},
    }
