"""Explanations of schema problems, through jsonschema (the slow path).

Imported only when a config is rejected or for `check`: importing jsonschema
takes about 40 ms. Each jsonschema error becomes a Problem with the JSON path
of the offending value, a message in plain words and a fix where one is known.
"""

import json
import re

from navio_runtime.spec.problems import _json_kind, _problem, _show, _suggest, _unique


def _schema_problems(document, schema_json):
    from jsonschema import Draft7Validator

    validator = Draft7Validator(json.loads(schema_json))
    problems = []
    for error in validator.iter_errors(document):
        problems.extend(_explain(error))
    return problems


def _in_document_order(document, problems):
    """Return the problems without duplicates, sorted by where they are in the document.

    The sort is stable, so schema problems stay before semantic problems of the same place.
    """
    unique = _unique(problems)
    return sorted(unique, key=lambda problem: _document_order(document, _parse_path(problem.path)))


_PATH_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]|\[("(?:[^"\\]|\\.)*")\]')


def _parse_path(path):
    """Return the keys and indexes of a path made by format_path."""
    parts = []
    for match in _PATH_PART.finditer(path):
        name, index, quoted = match.groups()
        if name is not None:
            parts.append(name)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(json.loads(quoted))
    return parts


def _document_order(document, path):
    """Return a sort key that puts errors in the order of the document's text."""
    key = []
    node = document
    for part in path:
        if isinstance(node, dict):
            keys = list(node)
            key.append(keys.index(part) if part in node else len(keys))
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            key.append(part)
            node = node[part] if part < len(node) else None
        else:
            key.append(0)
            node = None
    return key


def _explain(error):
    """Yield the Problems of one jsonschema ValidationError."""
    parts = list(error.absolute_path)
    kind = error.validator
    value = error.instance
    rule = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}

    if "propertyNames" in error.absolute_schema_path:
        yield _problem(parts, f"key {_show(value)} is not allowed here", "use a non-empty key")
    elif kind == "enum":
        listed = ", ".join(_show(choice) for choice in rule)
        yield _problem(parts, f"{_show(value)} is not one of {listed}", _suggest(value, rule))
    elif kind == "type":
        yield _explain_type(parts, value, rule)
    elif kind == "required":
        for name in rule:
            if isinstance(value, dict) and name not in value:
                yield _problem(parts + [name], f"required property {_show(name)} is missing", f"add {_show(name)}")
    elif kind == "dependencies":
        for name, needed in rule.items():
            if isinstance(value, dict) and name in value:
                for other in needed:
                    if other not in value:
                        yield _problem(
                            parts + [other],
                            f"{_show(name)} is set but {_show(other)} is missing",
                            f"add {_show(other)} or remove {_show(name)}",
                        )
    elif kind in ("minimum", "maximum"):
        yield _explain_range(parts, value, schema)
    elif kind == "minItems":
        needed = "1 item is" if rule == 1 else f"{rule} items are"
        yield _problem(parts, f"the array has {len(value)} items, but at least {needed} required", "add the missing items")
    elif kind == "minLength":
        yield _problem(parts, f"{_show(value)} is shorter than {rule} characters", "use a non-empty string")
    elif kind == "pattern":
        fix = schema.get("description") or f"match the regular expression {rule}"
        yield _problem(parts, f"{_show(value)} does not have the expected format", fix)
    elif kind == "anyOf" and all(set(option) == {"required"} for option in rule):
        names = [name for option in rule for name in option["required"]]
        listed = " or ".join(_show(name) for name in names)
        yield _problem(parts, f"needs at least one of {listed}", f"add {listed}")
    else:
        yield _problem(parts, error.message)


def _explain_type(parts, value, expected):
    expected_list = expected if isinstance(expected, list) else [expected]
    expected_types = " or ".join(_TYPE_NAMES.get(name, name) for name in expected_list)
    message = f"{_show(value)} is {_json_kind(value)}, expected {expected_types}"
    fix = f"use {expected_types}"
    if isinstance(value, str):
        text = value.strip()
        if "boolean" in expected_list and text in ("true", "false"):
            fix = f"write {text} without quotes"
        elif "integer" in expected_list and re.fullmatch(r"-?[0-9]+", text):
            fix = f"write {text} without quotes"
    elif isinstance(value, float) and "integer" in expected_list:
        fix = "use a whole number"
    return _problem(parts, message, fix)


_TYPE_NAMES = {
    "array": "an array",
    "boolean": "a boolean",
    "integer": "an integer",
    "null": "null",
    "number": "a number",
    "object": "an object",
    "string": "a string",
}


def _explain_range(parts, value, schema):
    low = schema.get("minimum")
    high = schema.get("maximum")
    if low is not None and _is_number(value) and value < low:
        message = f"{_show(value)} is less than the minimum {low}"
    else:
        message = f"{_show(value)} is greater than the maximum {high}"
    if low is not None and high is not None:
        fix = f"use a value from {low} to {high}"
    elif low is not None:
        fix = f"use a value of at least {low}"
    else:
        fix = f"use a value of at most {high}"
    return _problem(parts, message, fix)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
