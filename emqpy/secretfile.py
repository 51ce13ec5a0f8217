"""Writing a file only its owner may read (ctl's API key, the embedded NATS server's
credentials): created with mode 0600 and moved into place, never briefly world-readable."""
from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
