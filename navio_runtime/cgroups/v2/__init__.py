"""cgroup v2 (unified hierarchy) driver: `V2Manager` and one module per controller.

Each controller module has `apply(path, resources)`, which writes the part
of linux.resources it owns into the cgroup directory `path`, and
`stats(path)`, which returns that controller's part of `Manager.stats()`.
"""
