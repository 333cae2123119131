"""Problems found in a config.json, and the helpers that the checks share.

A Problem names the JSON path of the value, what is wrong with it and, where
one can be given, a fix. The helpers read values of unknown type safely,
because the semantic checks also run on documents that broke the schema.
"""

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding about a config, state or features document."""

    path: str  # JSON path such as "linux.namespaces[2].type", or "" for the document root
    message: str  # what is wrong, naming the value
    fix: str = ""  # what to do, or ""

    def __str__(self):
        where = self.path or "(document)"
        text = f"{where}: {self.message}"
        if self.fix:
            text += f"; {self.fix}"
        return text


# --- Public API ---------------------------------------------------------------


def format_path(parts) -> str:
    """Return the JSON path of a sequence of keys and indexes.

    ("linux", "namespaces", 2, "type") gives "linux.namespaces[2].type". A key
    that is not an identifier is quoted: linux.sysctl["net.ipv4.ip_forward"].
    """
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


# --- Shared helpers -------------------------------------------------------------


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# SemVer 2.0.0: MAJOR.MINOR.PATCH, optional -prerelease and +build identifiers.
_SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?\Z"
)


def _problem(parts, message, fix=""):
    return Problem(format_path(parts), message, fix)


def _show(value, limit=60):
    """Return a value as JSON text for a message, shortened to about `limit` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _json_kind(value):
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return type(value).__name__


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _str(value):
    return value if isinstance(value, str) else ""


def _unique(problems):
    seen = set()
    result = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            result.append(problem)
    return result


def _suggest(value, choices):
    """Return 'did you mean "x"?' for the choice closest to `value`, or ""."""
    if not isinstance(value, str) or not value:
        return ""
    import difflib

    def score(choice):
        ratio = difflib.SequenceMatcher(None, value.lower(), choice.lower()).ratio()
        # A shared prefix of three characters ("netz" and "network") counts extra.
        prefix_bonus = 0.2 if value[:3].lower() == choice[:3].lower() and len(value) >= 3 else 0.0
        return ratio + prefix_bonus

    strings = [choice for choice in choices if isinstance(choice, str)]
    if not strings:
        return ""
    best = max(strings, key=score)
    return f"did you mean {_show(best)}?" if score(best) >= 0.6 else ""


# --- Schema problems (slow path) ---------------------------------------------
