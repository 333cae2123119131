"""Run OCI lifecycle hooks (runtime-spec config.md "POSIX-platform Hooks").

Each hook gets the container state as JSON on stdin, its own args and env
(and nothing of the runtime's environment), and is killed when its timeout in
seconds runs out.
"""

import json
import subprocess

from navio_runtime.errors import NavioError
from navio_runtime.log import get_logger

log = get_logger(__name__)


class HookError(NavioError):
    """A hook exited non-zero, timed out or could not be started."""


def run_hooks(hooks, state, stage):
    """Run `hooks` in order; raise HookError on the first failure."""
    data = json.dumps(state).encode()
    for index, hook in enumerate(hooks):
        where = f"hooks.{stage}[{index}] {hook.path}"
        args = list(hook.args) or [hook.path]
        env = dict(item.split("=", 1) for item in hook.env if "=" in item)
        log.debug("running %s", where)
        try:
            result = subprocess.run(
                args, executable=hook.path, input=data, env=env, timeout=hook.timeout,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
            )
        except subprocess.TimeoutExpired:
            raise HookError(f"{where} timed out after {hook.timeout} s") from None
        except OSError as error:
            raise HookError(f"{where} could not be started: {error.strerror}") from None
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise HookError(f"{where} exited with status {result.returncode}: {output}")


def run_hooks_logging_errors(hooks, state, stage):
    """Run hooks whose failure the spec says to log, not to report (poststart, poststop)."""
    try:
        run_hooks(hooks, state, stage)
    except HookError as error:
        log.warning("%s", error)
