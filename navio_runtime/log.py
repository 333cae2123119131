"""Logging set-up for the CLI: text or JSON lines, to a file or to stderr.

With `--log-format json` each record is one JSON object per line with the keys
`level`, `msg` and `time`, which is what containerd and podman parse from runc.
"""

import json
import logging
import sys
import time


class JSONFormatter(logging.Formatter):
    def format(self, record):
        document = {
            "level": record.levelname.lower().replace("warning", "warn"),
            "msg": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
        }
        if record.exc_info and record.levelno >= logging.DEBUG and logging.getLogger().isEnabledFor(logging.DEBUG):
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document)


def configure(log_file=None, log_format="text", debug=False):
    """Send the library's log records to `log_file` (or stderr) in `log_format`."""
    logger = logging.getLogger("navio_runtime")
    logger.setLevel(logging.DEBUG if debug else logging.INFO if log_file else logging.WARNING)
    logger.propagate = False

    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)

    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger
