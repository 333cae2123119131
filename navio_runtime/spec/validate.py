"""Validate config.json against the OCI runtime specification 1.3.

There are two paths. The fast path, `validate_config`, runs on every `create`:
it checks the schema with code that scripts/gen-validator generated from
schemas/*.json (standard library only), then runs the semantic checks below.
The slow path, `find_problems`, imports jsonschema (about 40 ms, measured with
`python -X importtime` on a 2-CPU AMD EPYC VM) to list every schema problem with
its JSON path and a suggested fix, and adds every semantic problem.
`validate_config` falls back to it only when something is wrong.

The semantic checks are in navio_runtime.spec.semantics, the schema
explanations in navio_runtime.spec.explain.
"""

import json
import os

from navio_runtime.errors import SpecError
from navio_runtime.spec import _config_validator
from navio_runtime.spec.problems import Problem, _is_int, _json_kind, _show, format_path
from navio_runtime.spec.semantics import check_version, semantic_problems

__all__ = [
    "Problem",
    "find_problems",
    "format_path",
    "load_config",
    "validate_config",
    "validate_features",
    "validate_state",
]


def load_config(bundle: str) -> dict:
    """Read <bundle>/config.json and return it as a dict.

    Raises SpecError naming the file when it is missing, unreadable, not JSON
    (with line and column) or not a JSON object.
    """
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        if not os.path.isdir(bundle):
            message = f"bundle directory {bundle} not found"
            fix = "pass the path of an existing bundle directory"
        else:
            message = f"{path} not found"
            fix = "the bundle directory must contain config.json"
        raise SpecError(f"{message}: {fix}", [Problem("", message, fix)]) from None
    except OSError as error:
        message = f"cannot read {path}: {error.strerror}"
        raise SpecError(message, [Problem("", message)]) from None

    try:
        config = json.loads(data)
    except UnicodeDecodeError as error:
        message = f"{path} is not UTF-8 text: {error.reason} at byte {error.start}"
        raise SpecError(message, [Problem("", message)]) from None
    except json.JSONDecodeError as error:
        message = f"invalid JSON in {path} at line {error.lineno} column {error.colno}: {error.msg}"
        raise SpecError(message, [Problem("", message)]) from None
    except RecursionError:
        message = f"invalid JSON in {path}: arrays and objects are nested too deeply"
        raise SpecError(message, [Problem("", message)]) from None

    if not isinstance(config, dict):
        message = f"{path} must contain a JSON object, not {_json_kind(config)}"
        raise SpecError(message, [Problem("", message)])
    return config


def validate_config(config: dict, bundle: str, for_create: bool = True) -> None:
    """Raise SpecError unless the config is valid for a container in `bundle`.

    `for_create` requires the `process` object, which create and run need.
    The error's `problems` lists every problem (a list of Problem), and its
    message is one line that names the first problem's path and value.
    """
    try:
        _config_validator.validate(config)
    except _config_validator.JsonSchemaValueException as error:
        _raise_problems(config, bundle, for_create, fast_message=error.message)

    if any(True for _ in semantic_problems(config, bundle, for_create)):
        _raise_problems(config, bundle, for_create)


def find_problems(config: dict, bundle: str, for_create: bool = True) -> list[Problem]:
    """Return every schema problem and every semantic problem of a config.

    Imports jsonschema, so use it for explanations (the `check` command and
    failed validations), not on the path of every create.
    """
    from navio_runtime.spec.explain import _in_document_order, _schema_problems

    problems = _schema_problems(config, _config_validator.CONFIG_SCHEMA_JSON)
    problems.extend(semantic_problems(config, bundle, for_create))
    return _in_document_order(config, problems)


def validate_state(state: dict) -> list[Problem]:
    """Return the problems of a state document as the `state` command prints it."""
    from navio_runtime.spec.explain import _in_document_order, _schema_problems

    problems = _schema_problems(state, _config_validator.STATE_SCHEMA_JSON)
    if isinstance(state, dict):
        problems.extend(check_version(state.get("ociVersion"), ("ociVersion",)))
        pid = state.get("pid")
        if state.get("status") in ("created", "running") and _is_int(pid) and pid <= 0:
            problems.append(
                Problem(
                    "pid",
                    f"pid {pid} is not a process ID, but status {_show(state['status'])} needs the container process",
                    "report the PID of the container process as seen by the runtime",
                )
            )
    return _in_document_order(state, problems)


def validate_features(features: dict) -> list[Problem]:
    """Return the problems of a features document as the `features` command prints it."""
    from navio_runtime.spec.explain import _in_document_order, _schema_problems

    problems = _schema_problems(features, _config_validator.FEATURES_SCHEMA_JSON)
    if isinstance(features, dict):
        for key in ("ociVersionMin", "ociVersionMax"):
            problems.extend(check_version(features.get(key), (key,)))
    return _in_document_order(features, problems)


def _raise_problems(config, bundle, for_create, fast_message=""):
    problems = find_problems(config, bundle, for_create)
    if not problems:
        # The generated code and jsonschema disagree, so only the fast message is left.
        problems = [Problem("", f"config.json breaks the schema: {fast_message}")]
    first = problems[0]
    summary = f"invalid {os.path.join(bundle, 'config.json')}: {first}"
    if len(problems) == 2:
        summary += " (and 1 more problem)"
    elif len(problems) > 2:
        summary += f" (and {len(problems) - 1} more problems)"
    raise SpecError(summary, problems)
