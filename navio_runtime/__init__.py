"""navio-runtime: an OCI-compatible low-level container runtime.

The package is a library first. `navio_runtime.container` has one module per
lifecycle operation, and `navio_runtime.cli` is a thin command line over it.
Submodules are imported lazily, because every runtime command is a new process
and start-up time is part of the product.
"""

__version__ = "0.1.0"

# Version of the OCI runtime specification this runtime implements.
OCI_VERSION = "1.3.0"
