"""The CPUs the threads are sized by (service/cpus.py): affinity and the cgroup quota, read from
fake /proc and /sys trees; whatever is missing or garbled, a count and never an exception."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service import cpus
from service.api.metrics import Metrics
from service.config import Settings

AFFINITY = 8
V2_MOUNT = (
    "41 31 0:38 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw"
)
TMPFS = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755"


def v1_mount(point: str = "/sys/fs/cgroup/cpu,cpuacct", root: str = "/") -> str:
    return f"32 31 0:29 {root} {point} rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct"


def tree(base: Path, cgroup: str | None, mountinfo: list[str] | None, **files: str) -> Path:
    """A fake root: /proc/self/cgroup, /proc/self/mountinfo, and files named by their path
    relative to the root with "/" written as "__" (`sys__fs__cgroup__cpu.max="max 100000"`)."""
    proc = base / "proc/self"
    proc.mkdir(parents=True)
    if cgroup is not None:
        (proc / "cgroup").write_text(cgroup)
    if mountinfo is not None:
        (proc / "mountinfo").write_text("\n".join(mountinfo) + "\n")
    for name, text in files.items():
        path = base / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return base


@pytest.fixture(autouse=True)
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "affinity", lambda: AFFINITY)


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("150000 100000\n", 2),  # 1.5 CPUs: rounded up, as the JVM and Go do
        ("max 100000\n", AFFINITY),  # no quota
        ("50000 100000", 1),  # half a CPU: at least one thread
        ("400000 100000", 4),
        ("1600000 100000", AFFINITY),  # a quota above the mask: the mask
    ],
)
def test_a_cgroup_v2_quota(tmp_path: Path, cpu_max: str, expected: int) -> None:
    root = tree(tmp_path, "0::/\n", [TMPFS, V2_MOUNT], **{"sys__fs__cgroup__cpu.max": cpu_max})
    assert cpus.available(root) == expected


def test_no_quota_is_the_affinity_mask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real mask
    root = tree(tmp_path, "0::/\n", [V2_MOUNT], **{"sys__fs__cgroup__cpu.max": "max 100000"})
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpus.available(root) == expected


def test_the_tightest_level_of_a_nested_cgroup(tmp_path: Path) -> None:
    pod = "sys__fs__cgroup__kubepods.slice__pod1"
    files = {
        "sys__fs__cgroup__kubepods.slice__cpu.max": "max 100000",
        f"{pod}__cpu.max": "300000 100000",  # the pod's limit: 3
        f"{pod}__ctr__cpu.max": "max 100000",  # the container's own: none
    }
    cgroup = "0::/kubepods.slice/pod1/ctr\n"
    assert cpus.available(tree(tmp_path / "parent", cgroup, [V2_MOUNT], **files)) == 3
    files[f"{pod}__ctr__cpu.max"] = "100000 100000"  # the child tighter than its parent
    assert cpus.available(tree(tmp_path / "child", cgroup, [V2_MOUNT], **files)) == 1


def test_cgroup_v1_quota_and_period(tmp_path: Path) -> None:
    cgroup = "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n"
    mount = [TMPFS, v1_mount(root="/docker/abc")]  # the container's cgroup, mounted as its root
    d = "sys__fs__cgroup__cpu,cpuacct"
    limited = {f"{d}__cpu.cfs_quota_us": "250000\n", f"{d}__cpu.cfs_period_us": "100000\n"}
    assert cpus.available(tree(tmp_path / "a", cgroup, mount, **limited)) == 3
    unlimited = {**limited, f"{d}__cpu.cfs_quota_us": "-1\n"}
    assert cpus.available(tree(tmp_path / "b", cgroup, mount, **unlimited)) == AFFINITY


def test_v1_nested_below_the_mount(tmp_path: Path) -> None:
    d = "sys__fs__cgroup__cpu,cpuacct"
    files = {
        f"{d}__kubepods__cpu.cfs_quota_us": "200000",
        f"{d}__kubepods__cpu.cfs_period_us": "100000",
        f"{d}__kubepods__pod__cpu.cfs_quota_us": "-1",
        f"{d}__kubepods__pod__cpu.cfs_period_us": "100000",
    }
    root = tree(tmp_path, "3:cpu,cpuacct:/kubepods/pod\n", [v1_mount()], **files)
    assert cpus.available(root) == 2


def test_hybrid_v1_cpu_beside_an_empty_v2(tmp_path: Path) -> None:
    mounts = [
        v1_mount("/sys/fs/cgroup/cpu"),
        V2_MOUNT.replace("/sys/fs/cgroup", "/sys/fs/cgroup/unified"),
    ]
    files = {
        "sys__fs__cgroup__cpu__cpu.cfs_quota_us": "600000",
        "sys__fs__cgroup__cpu__cpu.cfs_period_us": "100000",
        "sys__fs__cgroup__unified__cgroup.procs": "1\n",  # no cpu.max: the controller is v1's
    }
    assert cpus.available(tree(tmp_path, "1:cpu:/\n0::/\n", mounts, **files)) == 6


def test_without_mountinfo_the_usual_places(tmp_path: Path) -> None:
    v2 = tree(
        tmp_path / "v2", "0::/app\n", None, **{"sys__fs__cgroup__app__cpu.max": "200000 100000"}
    )
    assert cpus.available(v2) == 2
    v1 = tree(
        tmp_path / "v1",
        "2:cpu,cpuacct:/\n",
        None,
        **{
            "sys__fs__cgroup__cpu,cpuacct__cpu.cfs_quota_us": "100000",
            "sys__fs__cgroup__cpu,cpuacct__cpu.cfs_period_us": "100000",
        },
    )
    assert cpus.available(v1) == 1


def test_an_escaped_mount_point_and_a_path_outside_the_mount_root(tmp_path: Path) -> None:
    mount = V2_MOUNT.replace("/sys/fs/cgroup", r"/my\040cgroup")
    root = tree(tmp_path, "0::/elsewhere\n", [mount], **{"my cgroup__cpu.max": "300000 100000"})
    assert cpus.available(root) == 3  # /elsewhere has none: its parent, the mount, has
    mount = V2_MOUNT.replace(" / /sys", " /outer /sys")
    root = tree(tmp_path / "ns", "0::/other/x\n", [mount], **{"sys__fs__cgroup__cpu.max": "1 1"})
    assert cpus.available(root) == 1


GARBLED = [
    "banana",
    "150000",
    "0 100000",
    "-5 100000",
    "150000 0",
    "150000 abc",
    "1e5 1e5",
    "",
    "\x00\xff\xfe",
    "150000 100000 7",
]


@pytest.mark.parametrize("text", GARBLED)
def test_a_garbled_cpu_max_is_no_limit(tmp_path: Path, text: str) -> None:
    root = tree(tmp_path, "0::/\n", [V2_MOUNT], **{"sys__fs__cgroup__cpu.max": text})
    assert cpus.available(root) == AFFINITY


@pytest.mark.parametrize(
    ("cgroup", "mountinfo"),
    [
        (None, None),  # nothing at all
        ("", []),
        ("garbage\n::\n0\n:::\n", ["x", "- - -", "1 2 3 4 5 6 - cgroup2", "a b c d e f g h i j"]),
        ("0::relative\n", [V2_MOUNT]),
        ("\x00\x01", ["\x00 \xff - cgroup2 cgroup2 rw"]),
    ],
)
def test_missing_or_garbled_proc_files_never_raise(
    tmp_path: Path, cgroup: str | None, mountinfo: list[str] | None
) -> None:
    root = tree(tmp_path, cgroup, mountinfo, **{"sys__fs__cgroup__cpu.max": "garbage"})
    assert cpus.available(root) == AFFINITY
    assert cpus.available(tmp_path / "does-not-exist") == AFFINITY


def test_unreadable_files_are_no_limit(tmp_path: Path) -> None:
    root = tree(tmp_path, "0::/\n", [V2_MOUNT])
    (root / "sys/fs/cgroup/cpu.max").mkdir(parents=True)  # a directory where a file should be
    assert cpus.available(root) == AFFINITY


def test_without_an_affinity_mask_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()

    def refused(pid: int) -> set[int]:
        raise OSError(pid)

    monkeypatch.setattr(os, "sched_getaffinity", refused, raising=False)
    assert cpus.affinity() == (os.cpu_count() or 1)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert cpus.affinity() == 1


def test_this_machine_gives_a_positive_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    assert cpus.available() >= 1
    assert cpus.available(Path("/")) <= (os.cpu_count() or 1)


def test_the_threads_setting_defaults_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIGHTGEN_THREADS", raising=False)
    monkeypatch.setattr(cpus, "available", lambda: 3)
    assert Settings().threads == 3
    monkeypatch.setattr(cpus, "available", lambda: 1000)
    assert Settings().threads == 256  # the setting's bound
    monkeypatch.setenv("WEIGHTGEN_THREADS", "5")
    assert Settings().threads == 5


def test_the_metric_says_the_number() -> None:
    m = Metrics()
    m.threads_in_use(3)
    assert "weightgen_threads 3.0" in m.exposition().decode()
