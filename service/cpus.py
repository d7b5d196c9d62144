"""The CPUs this process may run on, as the JVM and the Go runtime count them: the affinity mask,
and the CPU bandwidth quota of its cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us` over
`cpu.cfs_period_us`), ⌈quota / period⌉, the tightest of the cgroup and its ancestors (the
kernel applies every level's). `os.cpu_count()` counts the node's cores: in a pod limited to 2
CPUs on a 64-core node it says 64.

The cgroup is found from `/proc/self/cgroup` and the mounts in `/proc/self/mountinfo` (the
usual `/sys/fs/cgroup` places when that cannot be read). Standard library only; never raises:
what is missing or does not parse is no limit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

V1_FALLBACKS = ("sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpuacct,cpu")
_ESCAPED = re.compile(r"\\([0-7]{3})")  # mountinfo writes a space as \040


@dataclass(frozen=True)
class Mount:
    """A cgroup hierarchy's mount: `point` (under the root), the cgroup `root` it shows."""

    point: Path
    root: str
    v2: bool


def available(root: Path = Path("/")) -> int:
    """CPUs to size thread pools by: min(affinity mask, ⌈cgroup quota / period⌉), at least 1.
    `root` is where `/proc` and `/sys` are looked up (a test's fake tree)."""
    cpus = affinity()
    try:
        quota = quota_cpus(root)
    except (OSError, ValueError):  # the readers catch these; this is the promise kept
        quota = None
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, cpus)


def affinity() -> int:
    """CPUs in this process's affinity mask (taskset, cpusets), else the CPU count."""
    try:
        return len(os.sched_getaffinity(0)) or os.cpu_count() or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def quota_cpus(root: Path) -> int | None:
    """⌈quota / period⌉ of the tightest CPU quota over the cgroup's levels, None without one."""
    limits = [
        cpus
        for mount, path in cgroup_dirs(root)
        for directory in levels(mount.point, path)
        if (cpus := (v2_limit(directory) if mount.v2 else v1_limit(directory))) is not None
    ]
    return min(limits, default=None)


def cgroup_dirs(root: Path) -> Iterator[tuple[Mount, PurePosixPath]]:
    """(mount, the process's cgroup relative to that mount) of the v2 hierarchy and of v1's
    `cpu` controller, as far as they are found."""
    groups = memberships(root)
    mounts = list(cgroup_mounts(root)) or fallback_mounts(root)
    for mount in mounts:
        path = groups.get("" if mount.v2 else "cpu")
        if path is not None:
            yield mount, relative(path, mount.root)


def memberships(root: Path) -> dict[str, str]:
    """Controller -> cgroup path from `/proc/self/cgroup` ("" for the v2 hierarchy)."""
    found: dict[str, str] = {}
    for line in read(root / "proc/self/cgroup").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        hid, controllers, path = parts
        if hid == "0" and not controllers:
            found[""] = path
        for name in controllers.split(","):
            if name:
                found[name] = path
    return found


def cgroup_mounts(root: Path) -> Iterator[Mount]:
    """The cgroup2 mount and v1 mounts with the `cpu` controller, from `/proc/self/mountinfo`."""
    for line in read(root / "proc/self/mountinfo").splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 4:
            continue
        fstype, options = fields[dash + 1], fields[dash + 3].split(",")
        point = under(root, unescape(fields[4]))
        if fstype == "cgroup2":
            yield Mount(point, unescape(fields[3]), v2=True)
        elif fstype == "cgroup" and "cpu" in options:
            yield Mount(point, unescape(fields[3]), v2=False)


def fallback_mounts(root: Path) -> list[Mount]:
    """The usual places when mountinfo cannot be read: v2 at /sys/fs/cgroup, v1's cpu beside."""
    found = [Mount(root / "sys/fs/cgroup", "/", v2=True)]
    found += [Mount(root / p, "/", v2=False) for p in V1_FALLBACKS if (root / p).is_dir()]
    return found


def relative(path: str, mount_root: str) -> PurePosixPath:
    """The cgroup `path` below a mount showing `mount_root`; the mount itself when the path is
    not below it (a cgroup namespace the mount does not follow), as the JVM does."""
    p, r = PurePosixPath(path), PurePosixPath(mount_root)
    return p.relative_to(r) if p == r or r in p.parents else PurePosixPath()


def levels(point: Path, path: PurePosixPath) -> Iterator[Path]:
    """The cgroup's directory, then each parent up to the mount point."""
    parts = [p for p in path.parts if p not in ("/", ".", "..")]
    for depth in range(len(parts), -1, -1):
        yield point.joinpath(*parts[:depth])


def v2_limit(directory: Path) -> int | None:
    """CPUs of a v2 `cpu.max` ("150000 100000" -> 2; "max 100000": none)."""
    fields = read(directory / "cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return ratio(fields[0], fields[1])


def v1_limit(directory: Path) -> int | None:
    """CPUs of v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (a quota of -1: none)."""
    return ratio(read(directory / "cpu.cfs_quota_us"), read(directory / "cpu.cfs_period_us"))


def ratio(quota: str, period: str) -> int | None:
    """⌈quota / period⌉ for positive integers; None for anything else."""
    try:
        q, p = int(quota.strip()), int(period.strip())
    except ValueError:
        return None
    return -(-q // p) if q > 0 and p > 0 else None


def read(path: Path) -> str:
    """A small kernel file's text; "" when it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except (OSError, ValueError):
        return ""


def under(root: Path, absolute: str) -> Path:
    return root / absolute.lstrip("/")


def unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 8)), text)
