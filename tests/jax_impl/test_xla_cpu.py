"""XLA CPU flags: applied before JAX starts, the user's own win, unknown ones probed on other jaxlibs."""

from __future__ import annotations

import pytest
from cli_helpers import run_python


@pytest.mark.e2e  # fresh interpreters
def test_xla_cpu_flags_apply_before_jax_starts_and_respect_the_users():
    code = ("import json, os; from jax_impl import xla_cpu; ok = xla_cpu.apply(); import jax; "
            "n = len(jax.devices()); again = xla_cpu.apply(); "
            "print(json.dumps({'ok': ok, 'flags': os.environ['XLA_FLAGS'], 'devices': n, 'again': again}))")
    out = run_python(code, {"XLA_FLAGS": ""})
    assert out["ok"] and out["again"]  # the second call finds its flags already there
    from jax_impl import xla_cpu

    assert out["flags"] == " ".join(f"{k}={v}" for k, v in xla_cpu.CPU_FLAGS.items()) and out["devices"] == 1
    mine = run_python(code, {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_thunk_runtime=true"})
    assert not mine["ok"], "the user's own value wins, and apply says the flags are not ours"
    assert mine["flags"] == "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_thunk_runtime=true"
    # a flag of ours the user did not set is still added (two flags, as CPU_FLAGS held before)
    two = code.replace("ok = xla_cpu.apply()", "xla_cpu.CPU_FLAGS = {'--xla_cpu_experimental_ynn_fusion_type': "
                       "'individual_dot', '--xla_cpu_multi_thread_eigen': 'false'}; ok = xla_cpu.apply()")
    added = run_python(two, {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="})
    assert not added["ok"] and added["flags"] == ("--xla_cpu_experimental_ynn_fusion_type= "
                                                  "--xla_cpu_multi_thread_eigen=false")
    late = run_python("import json, jax; jax.devices(); from jax_impl import xla_cpu; "
                   "print(json.dumps({'ok': xla_cpu.apply()}))", {"XLA_FLAGS": ""})
    assert late == {"ok": False}


def test_xla_cpu_flags_are_probed_on_an_unmeasured_jaxlib(monkeypatch):
    """On a jaxlib the flags were not measured on, a flag XLA does not know is left out (XLA would abort)."""
    from jax_impl import xla_cpu

    monkeypatch.setattr(xla_cpu, "MEASURED_JAXLIB", ())
    xla_cpu._xla_accepts.cache_clear()
    try:
        assert xla_cpu._xla_accepts("--xla_cpu_experimental_ynn_fusion_type=individual_dot")
        assert not xla_cpu._xla_accepts("--xla_cpu_no_such_flag_anywhere=1")
    finally:
        xla_cpu._xla_accepts.cache_clear()
