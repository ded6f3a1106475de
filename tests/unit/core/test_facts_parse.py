"""The facts readers on outputs captured on real machines (tests/fixtures/gpu, ORIGINS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from envctl.core import facts_parse as fp

GPU = Path(__file__).resolve().parents[2] / "fixtures" / "gpu"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
from gpu_captures import body, section  # noqa: E402

AGENT_FIELDS = (
    "index,name,uuid,compute_cap,memory.total,mig.mode.current,driver_version,pci.bus_id,persistence_mode"
)


CAPTURES = {
    # file: (name, cc, memory MiB, MIG, driver, bus id, persistence)
    "linux-x86_64__nvidia-h200__590.48.01.txt": (
        "NVIDIA H200",
        "9.0",
        143771,
        "Disabled",
        "590.48.01",
        "0000:83:00.0",
        "Enabled",
    ),
    "linux-x86_64__nvidia-h200-mig__590.48.01.txt": (
        "NVIDIA H200",
        "9.0",
        143771,
        "Enabled",
        "590.48.01",
        None,
        "Enabled",
    ),
    "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt": (
        "NVIDIA H100 80GB HBM3",
        "9.0",
        81559,
        "Disabled",
        "590.48.01",
        None,
        "Enabled",
    ),
    "linux-x86_64__nvidia-l40s__595.80.txt": ("NVIDIA L40S", "8.9", 46068, "[N/A]", "595.80", None, None),
    "linux-x86_64__nvidia-geforce-rtx-2080-super__610.57.04.txt": (
        "NVIDIA GeForce RTX 2080 SUPER",
        "7.5",
        None,
        "[N/A]",
        "610.57.04",
        None,
        None,
    ),
}


@pytest.mark.parametrize("capture", sorted(CAPTURES))
def test_query_gpu_csv_with_header_and_units_from_real_captures(capture: str) -> None:
    name, cc, memory, mig, driver, bus, persistence = CAPTURES[capture]
    gpus = fp.parse_gpu_csv(section(f"captures/{capture}", "nvidia-smi --query-gpu="))
    assert gpus is not None and len(gpus) == 1
    (g,) = gpus
    assert (g.name, g.cc, g.driver, g.index) == (name, cc, driver, 0)
    assert g.uuid is not None and g.uuid.startswith("GPU-")
    if memory is not None:
        assert g.memory_mib == memory  # "143771 MiB": the unit of a csv without nounits is dropped
    assert g.mig == (None if mig == "[N/A]" else mig)
    if bus is not None:
        assert g.bus_id == bus  # 00000000:83:00.0 -> the sysfs spelling
    if persistence is not None:
        assert g.persistence == persistence


def test_header_csv_of_a_mixed_node_gives_each_gpu() -> None:
    text = body("smi-query/titanv-rtx5880ada-570.86.15-header.txt").split("--format=csv\n", 1)[1]
    gpus = fp.parse_gpu_csv(text)
    assert gpus is not None
    assert [(g.index, g.name, g.cc, g.driver) for g in gpus] == [
        (0, "NVIDIA TITAN V", "7.0", "570.86.15"),
        (1, "NVIDIA RTX 5880 Ada Generation", "8.9", "570.86.15"),
    ]


def test_compute_cap_lines_of_p40_and_3090_in_one_host() -> None:
    text = body("smi-query/p40x3-rtx3090-compute_cap.txt").split("--format=csv\n", 1)[1]
    # one column only: no name, so these are not GPUs the reader accepts
    assert fp.parse_gpu_csv(text) is None
    assert [line.strip() for line in text.splitlines()[1:] if line.strip()] == ["6.1", "6.1", "6.1", "8.6"]


def test_a_row_with_na_cells_reads_them_as_unknown() -> None:
    row = body("smi-query/rtx3080-na-and-invalid-field.txt").strip().splitlines()[-1]
    fields = ["timestamp", "index", "name", "uuid", "driver_version", "pstate", "x", "memory.total"]
    fields += [f"f{i}" for i in range(len(row.split(", ")) - len(fields))]
    (g,) = fp.parse_gpu_csv(row, fields) or []
    assert (g.index, g.name, g.driver, g.cc) == (0, "NVIDIA GeForce RTX 3080", None, None)
    assert g.memory_mib == 10240
    assert fp.unknown("[N/A]") and fp.unknown("N/A") and fp.unknown("[Not Supported]") and fp.unknown("")
    assert fp.unknown("[Requested functionality has been deprecated]") and not fp.unknown("9.0")


@pytest.mark.parametrize(
    ("capture", "meaning"),
    [
        ("smi-query/compute_cap-invalid-470.182.03.txt", "this nvidia-smi refuses a queried field"),
        ("smi-query/rtx3080-na-and-invalid-field.txt", "this nvidia-smi refuses a queried field"),
        ("errors/nvml-mismatch-550.144-ci.txt", "the NVIDIA libraries and the loaded kernel module differ"),
        (
            "errors/nvml-mismatch-470-no-nvml-line.txt",
            "the NVIDIA libraries and the loaded kernel module differ",
        ),
        ("errors/couldnt-communicate-container-no-gpus.txt", "nvidia-smi cannot talk to the NVIDIA driver"),
        ("errors/no-devices-found-query-exit6-pytorch-ci.txt", "nvidia-smi found no GPU"),
    ],
)
def test_nvidia_smi_failures_are_named(capture: str, meaning: str) -> None:
    text = body(capture)
    assert fp.smi_error(text) == meaning
    assert fp.parse_gpu_csv(text, AGENT_FIELDS.split(",")) is None  # never taken for a GPU row


def test_mismatch_errors_carry_the_userspace_version_when_they_print_it() -> None:
    assert fp.nvml_library_version(body("errors/nvml-mismatch-550.144-ci.txt")) == "550.144"
    assert fp.nvml_library_version(body("errors/nvml-mismatch-470-no-nvml-line.txt")) is None
    both = body("errors/nvml-mismatch-580.178-vs-loaded-580.173.02-truenas.txt")
    assert fp.nvml_library_version(both) == "580.178"
    module = fp.parse_proc_driver(both[both.index("NVRM") :])
    assert module == fp.KernelModule("580.173.02", "proprietary", "x86_64")


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        ("proc-version/open-565.57.01-ubuntu24.04.txt", ("565.57.01", "open", "x86_64")),
        ("proc-version/proprietary-384.98-ubuntu.txt", ("384.98", "proprietary", "x86_64")),
        ("proc-version/open-555.58-gentoo-localized-date.txt", ("555.58", "open", "x86_64")),
        ("proc-version/open-525.60.11-arch-dkms.txt", ("525.60.11", "open", "x86_64")),
        ("proc-version/jetson-orin-l4t-35.3.1-aarch64.txt", ("35.3.1", "open", "aarch64")),
        (
            "proc-version/proprietary-550.90.07-loaded-vs-pkg-550.107.02.txt",
            ("550.90.07", "proprietary", "x86_64"),
        ),
    ],
)
def test_proc_driver_version_lines(capture: str, expected: tuple[str, str, str]) -> None:
    text = body(capture)
    lines = "\n".join(line.lstrip("$ ") for line in text.splitlines() if "NVRM version:" in line)
    assert fp.parse_proc_driver(lines) == fp.KernelModule(*expected)


def test_driver_versions_compare_as_numbers() -> None:
    assert fp.driver_key("570.133.07") == fp.driver_key("570.133.7")
    assert fp.driver_key("550.135") < fp.driver_key("550.144.03")
    assert fp.parse_sys_version("580.95.05\n") == "580.95.05" and fp.parse_sys_version("garbage") is None


def test_lsmod_lists_the_loaded_modules_without_uvm() -> None:
    names = fp.parse_modules(body("proc-version/lsmod-modinfo-rhel8.txt"))
    assert {"nvidia", "nvidia_drm", "nvidia_modeset"} <= names and "nvidia_uvm" not in names


def test_cdi_specs_name_the_driver_they_were_generated_for() -> None:
    t4 = body("ctk/cdi-nvidia.yaml-t4-g4dn-570.133.20.yaml")
    assert fp.cdi_driver_versions(t4) == {"570.133.20"}
    assert fp.cdi_kind(t4) == "nvidia.com/gpu"
    old = body("ctk/cdi-spec-520.61.05-fedora-rc.txt")
    assert fp.cdi_driver_versions(old) == {"520.61.05"}


def test_toolkit_versions() -> None:
    assert fp.parse_ctk_version(body("ctk/nvidia-ctk-version-1.12.0.txt")) == "1.12.0"
    assert fp.parse_ctk_version(body("ctk/nvidia-container-runtime-version-tegra-1.11.0.txt")) == "1.11.0"


def test_systemctl_show_of_a_missing_unit() -> None:
    assert fp.parse_systemctl_show(body("services/persistenced-loadstate-not-found.txt")) == {
        "LoadState": "not-found"
    }


def test_ibv_devinfo_ports_roce_down_and_infiniband_active() -> None:
    ports = fp.parse_ibv_devinfo(body("ib-nccl/ibv_devinfo-roce-down-and-cx7.txt"))
    assert ports[0] == fp.RdmaPort("mlx5_12", 1, "DOWN", "Ethernet")
    assert len(ports) == 1  # the excerpt ends before mlx5_13's port lines: no port made up
    ib = fp.parse_ibv_devinfo(body("ib-nccl/ibv_devinfo-infiniband-active.txt"))
    assert ib and {p.state for p in ib} == {"ACTIVE"} and {p.link_layer for p in ib} == {"InfiniBand"}
    roce = fp.parse_ibv_devinfo(body("ib-nccl/ibv_devinfo-h100-roce.txt"))
    assert roce and all(p.link_layer == "Ethernet" for p in roce)


def test_nccl_version_from_debug_logs_and_file_names() -> None:
    assert fp.parse_nccl(body("ib-nccl/nccl-debug-a100pcie-2.19.3-ib.txt")) == "2.19.3"
    assert fp.parse_nccl(body("ib-nccl/nccl-debug-h800-2.18.5-roce.txt")) == "2.18.5"
    assert fp.parse_nccl("nvidia_nccl_cu12-2.21.5.dist-info") == "2.21.5"
    assert fp.parse_nccl("libnccl.so.2.19.3") == "2.19.3"
    assert fp.parse_nccl("libfoo.so") is None


@pytest.mark.parametrize(
    ("capture", "vendor", "flags_in", "flags_out"),
    [
        (
            "cpu/linux-unknown-sapphirerapids.cpuinfo.txt",
            "GenuineIntel",
            {"avx2", "avx512f", "amx_tile"},
            set(),
        ),
        ("cpu/linux-rocky8.5-zen4.cpuinfo.txt", "AuthenticAMD", {"avx2", "avx512f"}, {"amx_tile"}),
        ("cpu/linux-ubuntu18.04-broadwell.cpuinfo.txt", "GenuineIntel", {"avx2"}, {"avx512f"}),
        ("cpu/linux-rhel9-neoverse_v2.cpuinfo.txt", "ARM", {"sve2", "bf16"}, {"avx"}),
    ],
)
def test_cpuinfo_vendor_and_flags(capture: str, vendor: str, flags_in: set[str], flags_out: set[str]) -> None:
    cpu = fp.parse_cpuinfo(body(capture))
    assert cpu.vendor == vendor and cpu.processors >= 1
    assert flags_in <= cpu.flags and not (flags_out & cpu.flags)
    if vendor == "ARM":
        assert cpu.model == "Neoverse-V2"  # CPU part 0xd4f: Grace


def test_glibc_readers() -> None:
    assert fp.parse_ldd_version("ldd (Debian GLIBC 2.36-9+deb12u14) 2.36\nCopyright\n") == "2.36"
    assert fp.parse_ldd_version("musl libc (x86_64)\nVersion 1.2.4\n") is None
    assert fp.parse_confstr_glibc("glibc 2.36") == "2.36" and fp.parse_confstr_glibc(None) is None


def test_readers_never_raise_on_garbage() -> None:
    for text in ("", "\x00\xff", "NVRM version:", "a, b, c\n1, 2", "hca_id:\nport: x\n"):
        fp.parse_gpu_csv(text)
        fp.parse_proc_driver(text)
        fp.parse_modules(text)
        fp.parse_cpuinfo(text)
        fp.parse_ibv_devinfo(text)
        fp.cdi_driver_versions(text)
        fp.parse_docker_runtimes(text)


def test_docker_runtimes_nested_too_deeply_are_none() -> None:
    assert fp.parse_docker_runtimes("[" * 100_000 + "]" * 100_000) == ()
