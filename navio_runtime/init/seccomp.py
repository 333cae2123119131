"""Build and load the seccomp filter of `linux.seccomp` with libseccomp's Python binding.

`build_filter` turns the config into a `seccomp.SyscallFilter` (Debian's
python3-seccomp, libseccomp 2.5) without loading it. `load_seccomp` builds,
loads and, for SCMP_ACT_NOTIFY rules, sends the notify file descriptor to the
seccomp agent at `listenerPath`. The init loads the filter as late as it can
before execve, so the fewest possible runtime syscalls run under it.

Without no_new_privs the kernel loads a filter only for a process with
CAP_SYS_ADMIN. A container whose config sets noNewPrivileges to false and
drops CAP_SYS_ADMIN (podman's default) must therefore load the filter before
its capabilities are dropped, which is what runc does.

Behaviour follows runc 1.1: a rule whose action equals the default action is
skipped, a syscall name that libseccomp does not know is skipped with a debug
log, and several conditions on the same argument become separate rules.
"""

import errno
import json
import os
import re
import socket
import struct

# libseccomp's own binding. The absolute import cannot pick up this module.
# It is imported here, not on first use, because the init imports this module
# before pivot_root and the binding's file is out of reach after it.
import seccomp as _libseccomp

from navio_runtime import OCI_VERSION
from navio_runtime.errors import ProcessAttributeError, SpecError
from navio_runtime.log import get_logger

logger = get_logger(__name__)

ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
ACTION_NAMES = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)

# Comparison operator of the config -> attribute of the binding.
OPERATORS = {
    "SCMP_CMP_NE": "NE",
    "SCMP_CMP_LT": "LT",
    "SCMP_CMP_LE": "LE",
    "SCMP_CMP_EQ": "EQ",
    "SCMP_CMP_GE": "GE",
    "SCMP_CMP_GT": "GT",
    "SCMP_CMP_MASKED_EQ": "MASKED_EQ",
}

# Filter flag of the config -> filter attribute of the binding (seccomp.Attr).
# libseccomp 2.5 has no attribute for WAIT_KILLABLE_RECV, so that flag raises there.
FLAG_ATTRIBUTES = {
    "SECCOMP_FILTER_FLAG_TSYNC": "CTL_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG": "CTL_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": "CTL_SSB",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": "CTL_WAITKILL",
}

ARCH_PREFIX = "SCMP_ARCH_"

# A syscall has at most six arguments.
MAX_ARGUMENT_INDEX = 5

# Between loading the filter and handing the notify fd to the agent, the
# runtime itself calls sendmsg, and a log line calls write. A NOTIFY rule on
# either would block the container forever, because no agent can respond yet.
NOTIFY_FORBIDDEN_SYSCALLS = ("write", "sendmsg")

SECCOMP_FD_NAME = "seccompFd"

# libseccomp's "pseudo syscall" number for a name it cannot resolve (__NR_SCMP_ERROR).
_NR_SCMP_ERROR = -1

# Rule sets longer than this use libseccomp's binary tree optimization (runc uses the same threshold).
_OPTIMIZE_THRESHOLD = 32


def uses_notify(seccomp_cfg):
    """Return whether any rule of `seccomp_cfg` has the SCMP_ACT_NOTIFY action."""
    if not seccomp_cfg:
        return False
    return any(rule.get("action") == "SCMP_ACT_NOTIFY" for rule in seccomp_cfg.get("syscalls") or ())


# ---------------------------------------------------------------------------
# Building the filter
# ---------------------------------------------------------------------------


def build_filter(seccomp_cfg):
    """Return a `seccomp.SyscallFilter` for `linux.seccomp`, ready to load.

    Raises SpecError for an invalid config (unknown action, architecture,
    flag or operator, errnoRet on an action without an errno, NOTIFY without
    listenerPath) and ProcessAttributeError when libseccomp rejects a valid
    one. The filter leaves no_new_privs alone, because the init sets it from
    process.noNewPrivileges.
    """
    binding = _libseccomp
    if not isinstance(seccomp_cfg, dict):
        raise SpecError(f"linux.seccomp: expected an object, got {seccomp_cfg!r}")

    default_name = seccomp_cfg.get("defaultAction")
    default_action = _action(binding, default_name, seccomp_cfg.get("defaultErrnoRet"), "linux.seccomp.defaultAction")
    if default_name == "SCMP_ACT_NOTIFY":
        raise SpecError(
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action, because the "
            "runtime's own syscalls would wait for an agent that has not received the notify fd yet"
        )
    _check_listener(binding, seccomp_cfg)

    # NOTE: runc also patches the BPF program (libcontainer/seccomp/patchbpf) so
    # that syscalls newer than every syscall the profile names fail with ENOSYS
    # instead of the default errno. This filter does not, so with a default errno
    # of EPERM a syscall such as clone3 fails with EPERM and glibc does not fall back.
    seccomp_filter = binding.SyscallFilter(default_action)
    _call(seccomp_filter.set_attr, "clear the no_new_privs attribute", binding.Attr.CTL_NNP, 0)
    # Without API_SYSRAWRC, libseccomp reports every kernel error as ECANCELED.
    _call(seccomp_filter.set_attr, "request raw kernel error codes", binding.Attr.API_SYSRAWRC, 1)
    _add_architectures(binding, seccomp_filter, seccomp_cfg.get("architectures") or ())
    _set_flags(binding, seccomp_filter, seccomp_cfg.get("flags") or ())

    rules = seccomp_cfg.get("syscalls") or ()
    if len(rules) > _OPTIMIZE_THRESHOLD:
        try:
            seccomp_filter.set_attr(binding.Attr.CTL_OPTIMIZE, 2)
        except (RuntimeError, ValueError) as err:
            logger.debug("libseccomp binary tree optimization is not available: %s", err)

    for index, rule in enumerate(rules):
        _add_rule(binding, seccomp_filter, rule, index, default_action)
    return seccomp_filter


def _check_listener(binding, seccomp_cfg):
    listener_path = seccomp_cfg.get("listenerPath")
    if seccomp_cfg.get("listenerMetadata") and not listener_path:
        raise SpecError("linux.seccomp.listenerMetadata is set, but listenerPath is not")
    if not uses_notify(seccomp_cfg):
        return
    if not listener_path:
        raise SpecError("linux.seccomp: a rule uses SCMP_ACT_NOTIFY, but listenerPath is not set")
    if binding.get_api() < 6:
        raise ProcessAttributeError(
            f"SCMP_ACT_NOTIFY needs libseccomp API level 6 (libseccomp 2.5 and Linux 5.7); this host has level {binding.get_api()}"
        )


def _action(binding, name, errno_ret, where):
    if name not in ACTION_NAMES:
        raise SpecError(f"{where}: unknown action {name!r}; known actions: {', '.join(ACTION_NAMES)}")
    if errno_ret is not None and name not in ERRNO_ACTIONS:
        raise SpecError(f"{where}: an errno return value is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {name}")
    if name in ERRNO_ACTIONS:
        # The spec's default is EPERM. The kernel keeps 16 bits of return data.
        value = errno.EPERM if errno_ret is None else errno_ret
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise SpecError(f"{where}: errno return value must be an integer from 0 to 65535, got {value!r}")
        return binding.ERRNO(value) if name == "SCMP_ACT_ERRNO" else binding.TRACE(value)

    actions = {
        "SCMP_ACT_KILL": binding.KILL,
        "SCMP_ACT_KILL_THREAD": binding.KILL,
        "SCMP_ACT_KILL_PROCESS": binding.KILL_PROCESS,
        "SCMP_ACT_TRAP": binding.TRAP,
        "SCMP_ACT_ALLOW": binding.ALLOW,
        "SCMP_ACT_LOG": binding.LOG,
        "SCMP_ACT_NOTIFY": binding.NOTIFY,
    }
    return actions[name]


def _add_architectures(binding, seccomp_filter, architectures):
    for name in architectures:
        suffix = name[len(ARCH_PREFIX):] if isinstance(name, str) and name.startswith(ARCH_PREFIX) else None
        arch = getattr(binding.Arch, suffix, None) if suffix else None
        if arch is None:
            raise SpecError(f"linux.seccomp.architectures: unknown or unsupported architecture {name!r}")
        if not seccomp_filter.exist_arch(arch):
            _call(seccomp_filter.add_arch, f"add architecture {name}", arch)


def _set_flags(binding, seccomp_filter, flags):
    for flag in flags:
        if flag not in FLAG_ATTRIBUTES:
            raise SpecError(f"linux.seccomp.flags: unknown flag {flag!r}; known flags: {', '.join(FLAG_ATTRIBUTES)}")
        attribute = getattr(binding.Attr, FLAG_ATTRIBUTES[flag], None)
        if attribute is None:
            raise ProcessAttributeError(
                f"seccomp flag {flag} is not supported by the installed libseccomp "
                f"(its Python binding has no attribute {FLAG_ATTRIBUTES[flag]})"
            )
        _call(seccomp_filter.set_attr, f"set flag {flag}", attribute, 1)


def _add_rule(binding, seccomp_filter, rule, index, default_action):
    where = f"linux.seccomp.syscalls[{index}]"
    if not isinstance(rule, dict):
        raise SpecError(f"{where}: expected an object, got {rule!r}")
    names = rule.get("names")
    if not names or not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise SpecError(f"{where}.names: expected a non-empty list of syscall names, got {names!r}")
    action_name = rule.get("action")
    action = _action(binding, action_name, rule.get("errnoRet"), f"{where}.action")
    if action_name == "SCMP_ACT_NOTIFY":
        forbidden = sorted(set(names) & set(NOTIFY_FORBIDDEN_SYSCALLS))
        if forbidden:
            raise SpecError(
                f"{where}: SCMP_ACT_NOTIFY cannot be used for {', '.join(forbidden)}, because the runtime "
                "calls it before the seccomp agent has the notify fd"
            )
    arguments = rule.get("args") or ()
    conditions = [_condition(binding, argument, f"{where}.args[{position}]") for position, argument in enumerate(arguments)]

    if action == default_action:
        # libseccomp rejects such a rule (EACCES), and it would change nothing.
        logger.debug("skipping %s: its action %s is the default action", where, action_name)
        return

    # libseccomp rejects two comparisons of the same argument in one rule
    # (EINVAL). runc then adds one rule per comparison, so the syscall matches
    # when ANY of them is true instead of all of them. Profiles written for runc
    # rely on that, so do the same.
    indexes = [argument["index"] for argument in arguments]
    if len(set(indexes)) == len(indexes):
        condition_groups = [conditions]
    else:
        condition_groups = [[condition] for condition in conditions]

    for name in names:
        number = binding.resolve_syscall(binding.Arch.NATIVE, name)
        if number == _NR_SCMP_ERROR:
            logger.debug("ignoring syscall %r in %s: libseccomp does not know it", name, where)
            continue
        for group in condition_groups:
            try:
                seccomp_filter.add_rule(action, number, *group)
            except (RuntimeError, ValueError) as err:
                raise ProcessAttributeError(
                    f"cannot add seccomp rule {where} ({action_name}) for syscall {name} with args "
                    f"{json.dumps(list(arguments))}: {_describe_library_error(err)}"
                ) from err


def _condition(binding, argument, where):
    if not isinstance(argument, dict):
        raise SpecError(f"{where}: expected an object, got {argument!r}")
    index = argument.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_ARGUMENT_INDEX:
        raise SpecError(f"{where}.index: expected an integer from 0 to {MAX_ARGUMENT_INDEX}, got {index!r}")
    operator = argument.get("op")
    if operator not in OPERATORS:
        raise SpecError(f"{where}.op: unknown operator {operator!r}; known operators: {', '.join(OPERATORS)}")
    values = []
    for field in ("value", "valueTwo"):
        value = argument.get(field, 0 if field == "valueTwo" else None)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise SpecError(f"{where}.{field}: expected an integer from 0 to 2**64-1, got {value!r}")
        values.append(value)
    # For SCMP_CMP_MASKED_EQ, value is the mask and valueTwo the expected result, as in libseccomp.
    return binding.Arg(index, getattr(binding, OPERATORS[operator]), values[0], values[1])


def _describe_library_error(err):
    code = _library_errno(err)
    if code is None:
        return str(err)
    return f"{os.strerror(code)} ({_errno_name(code)}, reported by libseccomp)"


def _library_errno(err):
    # The binding reports failures as RuntimeError("Library error (errno = -13)").
    match = re.search(r"errno = (-?\d+)", str(err))
    return abs(int(match.group(1))) if match else None


def _errno_name(code):
    return errno.errorcode.get(code, str(code))


def _call(function, description, *args):
    try:
        return function(*args)
    except (RuntimeError, ValueError) as err:
        raise ProcessAttributeError(f"cannot {description} in the seccomp filter: {_describe_library_error(err)}") from err


# ---------------------------------------------------------------------------
# Loading the filter and handing the notify fd to the agent
# ---------------------------------------------------------------------------


def connect_listener(seccomp_cfg):
    """Connect to the seccomp agent at `listenerPath` and return the socket, or None without NOTIFY rules.

    listenerPath is a host path, so an init that calls pivot_root must connect
    before it and pass the socket to `load_seccomp`.
    """
    if not uses_notify(seccomp_cfg):
        return None
    path = seccomp_cfg.get("listenerPath")
    if not path:
        raise SpecError("linux.seccomp: a rule uses SCMP_ACT_NOTIFY, but listenerPath is not set")

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        listener.connect(path)
    except OSError as err:
        listener.close()
        raise ProcessAttributeError(
            f"cannot connect to the seccomp agent at linux.seccomp.listenerPath {path}: "
            f"{os.strerror(err.errno)} ({_errno_name(err.errno)})"
        ) from err
    return listener


def process_state_message(seccomp_cfg, state):
    """Return the JSON "container process state" that the runtime spec defines for the seccomp agent.

    `state` is the container's OCI state (ociVersion, id, status, pid, bundle,
    annotations). Its pid is the container process in the runtime's PID
    namespace, so it becomes the top-level pid too. The init's own pid is only
    a fallback, because inside a PID namespace it is 1.
    """
    document = {
        "ociVersion": OCI_VERSION,
        "fds": [SECCOMP_FD_NAME],
        "pid": state.get("pid") or os.getpid(),
        "metadata": seccomp_cfg.get("listenerMetadata") or "",
        "state": state,
    }
    return json.dumps(document).encode()


def load_seccomp(seccomp_cfg, notify_state=None, listener=None):
    """Build and load the filter of `linux.seccomp`, or do nothing when it is None.

    With SCMP_ACT_NOTIFY rules, the container process state built from
    `notify_state` goes to the agent in one sendmsg together with the notify
    fd (SCM_RIGHTS), and then the connection and the fd are closed. `listener`
    is a socket from `connect_listener`. Without it, this function connects to
    listenerPath itself. Either way the connection exists before the filter
    is loaded, so only sendmsg runs between loading the filter and handing
    over the fd. This function always closes `listener`.
    """
    if seccomp_cfg is None:
        return
    try:
        seccomp_filter = build_filter(seccomp_cfg)
        notify = uses_notify(seccomp_cfg)
        message = None
        if notify:
            if notify_state is None:
                raise ProcessAttributeError(
                    "linux.seccomp uses SCMP_ACT_NOTIFY, but the init has no container state to send to the agent"
                )
            message = process_state_message(seccomp_cfg, notify_state)
            if listener is None:
                listener = connect_listener(seccomp_cfg)

        _load(seccomp_filter)
        if notify:
            _send_notify_fd(seccomp_filter, listener, message, seccomp_cfg["listenerPath"])
    finally:
        if listener is not None:
            listener.close()


def _load(seccomp_filter):
    try:
        seccomp_filter.load()
    except (RuntimeError, ValueError) as err:
        message = f"cannot load the seccomp filter: {_describe_library_error(err)}"
        if _library_errno(err) == errno.EACCES:
            message += (
                "; without no_new_privs the kernel requires CAP_SYS_ADMIN, so load the filter before "
                "dropping capabilities or set process.noNewPrivileges"
            )
        raise ProcessAttributeError(message) from err


def _send_notify_fd(seccomp_filter, listener, message, listener_path):
    notify_fd = seccomp_filter.get_notify_fd()
    try:
        rights = struct.pack("i", notify_fd)
        sent = listener.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        # The spec allows more sendmsg calls, with the fd only in the first one.
        if sent < len(message):
            listener.sendall(message[sent:])
    except OSError as err:
        raise ProcessAttributeError(
            f"cannot send the seccomp notify fd to the agent at {listener_path}: "
            f"{os.strerror(err.errno)} ({_errno_name(err.errno)})"
        ) from err
    finally:
        # libseccomp 2.5.4 does not close the notify fd when the filter is released, so this is its only close.
        os.close(notify_fd)
