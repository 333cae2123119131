"""Logging for the library and the CLI: text or JSON lines, to a file or to stderr.

With `--log-format json` each record is one JSON object per line with the keys
`level`, `msg` and `time`, which is what containerd and podman parse from runc.

Library modules call `get_logger(__name__)`. The returned logger drops records
below a threshold before the `logging` module is imported: a CLI command
without --log or --debug shows only warnings and errors, and importing logging
costs about 4 ms, which every runtime command would otherwise pay. A program
that imports the library keeps the threshold at 0, so `logging` and its
configuration decide as usual.
"""

import sys

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40

_threshold = 0

# Handler settings that wait for the first record above the threshold.
_deferred_handler = None


class LazyLogger:
    """A stand-in for logging.getLogger(name) that imports logging on the first record it passes on."""

    __slots__ = ("name", "_logger")

    def __init__(self, name):
        self.name = name
        self._logger = None

    def _emit(self, level, message, args, kwargs):
        if level < _threshold:
            return
        try:
            if _deferred_handler is not None:
                _install_deferred_handler()
            if self._logger is None:
                import logging

                self._logger = logging.getLogger(self.name)
        except ImportError:
            # In the container init after pivot_root the standard library is
            # out of reach unless logging was imported before.
            _write_plain(level, message, args)
            return
        self._logger.log(level, message, *args, **kwargs)

    def debug(self, message, *args, **kwargs):
        self._emit(DEBUG, message, args, kwargs)

    def info(self, message, *args, **kwargs):
        self._emit(INFO, message, args, kwargs)

    def warning(self, message, *args, **kwargs):
        self._emit(WARNING, message, args, kwargs)

    def error(self, message, *args, **kwargs):
        self._emit(ERROR, message, args, kwargs)

    def isEnabledFor(self, level):
        return level >= _threshold


_LEVEL_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}


def _write_plain(level, message, args):
    text = message % args if args else message
    sys.stderr.write(f"navio-runtime: {_LEVEL_NAMES.get(level, level)}: {text}\n")


def get_logger(name):
    """Return the logger for module `name`."""
    return LazyLogger(name)


def configure(log_file=None, log_format="text", debug=False):
    """Send the library's records to `log_file` (or stderr) in `log_format`.

    Without a log file and without `debug`, only warnings and errors go to
    stderr, and the handler is installed when the first of them arrives.
    """
    global _threshold, _deferred_handler

    if debug:
        _threshold = DEBUG
    elif log_file:
        _threshold = INFO
    else:
        _threshold = WARNING
        _deferred_handler = (None, log_format)
        return
    _install_handler(log_file, log_format, _threshold)


def _install_deferred_handler():
    global _deferred_handler

    log_file, log_format = _deferred_handler
    _deferred_handler = None
    _install_handler(log_file, log_format, WARNING)


def _install_handler(log_file, log_format, level):
    import logging

    logger = logging.getLogger("navio_runtime")
    logger.setLevel(level)
    logger.propagate = False
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_make_json_formatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)


def _make_json_formatter():
    import json
    import logging
    import time

    class JSONFormatter(logging.Formatter):
        def format(self, record):
            seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            document = {
                "level": record.levelname.lower().replace("warning", "warn"),
                "msg": record.getMessage(),
                "time": f"{seconds}.{int(record.msecs):03d}Z",
            }
            return json.dumps(document)

    return JSONFormatter()


def open_log_fds():
    """Return the fds of the runtime's log handlers, which a forked init keeps open."""
    if "logging" not in sys.modules:
        return set()
    import logging

    fds = set()
    for handler in logging.getLogger("navio_runtime").handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None and hasattr(stream, "fileno"):
            fds.add(stream.fileno())
    return fds
