"""Reading Linux's /proc in tests: thread priorities, CPU time, and which processes belong to a test."""

from __future__ import annotations

from pathlib import Path

HAS_PROC = Path("/proc/self/task").is_dir()


def _stat_fields(stat_file: Path) -> list[str]:
    """Fields of a /proc stat line after the command name (which may contain spaces)."""
    return stat_file.read_text().rsplit(")", 1)[1].split()


def threads(pid: int | str = "self") -> dict[int, tuple[int, int]]:
    """tid -> (nice, CPU ticks) for every thread of a process."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = _stat_fields(task / "stat")
        except FileNotFoundError:  # the thread ended while we looked
            continue
        out[int(task.name)] = (int(fields[16]), int(fields[11]) + int(fields[12]))
    return out


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of live (not zombie) processes whose environment has name=value."""
    marker = f"{name}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            alive = _stat_fields(entry / "stat")[0] != "Z"
            if alive and marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError, IndexError):
            continue
    return pids
