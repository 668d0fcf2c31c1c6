"""Key files in the data directory, created atomically.

The secret key, the audit signing key and the portal session key each live in a file of the
data directory that the first user creates. Threads and processes of a fresh server race to
create it, so creation must never expose a file that exists but is still empty: the key goes
to a temporary file (mode 0600) that is fsynced and then hard-linked to its name. The link
either publishes a complete file or fails because someone else's key is already there, and
then that key is kept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def create_key_file(path: Path, key: bytes) -> bool:
    """Publish `key` at `path` unless a key file is there already; True when this call did."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates it with mode 0600
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temporary)
