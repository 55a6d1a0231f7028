"""The machine fingerprint: numbers are compared (gate baselines, reused evaluations, resume) only within one
fingerprint, so it must change whenever the hardware a number depends on changes, and only then."""

from bench.environment import cpu_info, fingerprint, machine_fingerprint

ZEN3 = {"model": "AMD EPYC", "arch": "x86_64", "cpuid": "25/1/1", "flags": ["avx", "avx2", "f16c", "fma", "sse4_2"],
        "physical_cores": 2, "logical_cores": 2, "affinity_cores": 2, "memory_gib": 23.5}


def test_same_model_name_on_a_newer_host_is_another_machine():
    zen4 = ZEN3 | {"cpuid": "25/17/1", "flags": [*ZEN3["flags"], "avx512_bf16", "avx512_vnni", "avx512f"]}
    assert fingerprint(zen4, []) != fingerprint(ZEN3, [])
    assert fingerprint(ZEN3 | {"flags": zen4["flags"]}, []) != fingerprint(ZEN3, [])  # flags alone
    assert fingerprint(ZEN3 | {"cpuid": "25/17/1"}, []) != fingerprint(ZEN3, [])  # cpuid alone


def test_fingerprint_ignores_what_does_not_change_the_hardware():
    assert fingerprint(ZEN3 | {"affinity_cores": 1}, []) == fingerprint(ZEN3, [])  # a taskset, not a machine
    assert fingerprint(ZEN3 | {"flags": list(reversed(ZEN3["flags"]))}, []) == fingerprint(ZEN3, [])
    assert fingerprint(ZEN3 | {"memory_gib": 23.6}, []) == fingerprint(ZEN3, [])  # rounding noise
    assert fingerprint(ZEN3, ["NVIDIA H200"]) != fingerprint(ZEN3, [])


def test_this_machine_has_a_stable_fingerprint():
    assert len(machine_fingerprint()) == 12 and machine_fingerprint() == machine_fingerprint()
    assert "flags" in cpu_info() and "cpuid" in cpu_info()
