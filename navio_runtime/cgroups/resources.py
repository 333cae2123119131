"""Helpers to read the linux.resources dict of config.json."""

from navio_runtime.errors import CgroupError


def section(resources, key):
    """Return the object linux.resources.<key>, or {} when it is absent or null."""
    value = (resources or {}).get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CgroupError(f"invalid linux.resources.{key} {value!r}: expected an object")
    return value


def entries(resources, key, subkey):
    """Return the list linux.resources.<key>.<subkey>, or [] when it is absent or null."""
    value = section(resources, key).get(subkey)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CgroupError(f"invalid linux.resources.{key}.{subkey} {value!r}: expected a list")
    return value


def integer(container, key, where, minimum=None, maximum=None):
    """Return container[key] as an int, or None when absent. Raise CgroupError when it is out of range."""
    value = container.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"invalid {where}.{key} {value!r}: expected an integer")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else minimum
        high = "" if maximum is None else maximum
        raise CgroupError(f"invalid {where}.{key} {value}: expected a value in {low}..{high}")
    return value
