"""`emqpy ctl data export|import <File>`, printing what `emqx ctl data` prints: the steps as
they happen, then the outcome."""
from __future__ import annotations

import json

from emqpy.backup import archive


def _reason(e: Exception) -> str:
    return json.dumps(str(e), ensure_ascii=False)  # (EMQX prints the reason with ~p)


async def cmd_data(broker, args: list[str]) -> str | None:
    """The output, or None for a usage error."""
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line + "\n")

    if args == ["export"]:
        try:
            info = await archive.export(broker, progress=say)
        except (archive.BackupError, OSError) as e:
            say(f"[error] Data export failed, reason: {_reason(e)}.")
        else:
            path = archive.backup_dir(broker) / info["filename"]
            say(f"Data has been successfully exported to {path}.")
        return "".join(lines)
    if len(args) == 2 and args[0] == "import":
        try:
            result = await archive.import_file(broker, args[1], progress=say)
        except (archive.BackupError, OSError) as e:
            say(f"[error] Data import failed, reason: {_reason(e)}.")
        else:
            say("Data has been imported successfully." if result.ok else
                "Data has been imported, but some errors occurred, see the log above.")
        return "".join(lines)
    return None
