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
    users = "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_thunk_runtime=true"
    mine = run_python(code, {"XLA_FLAGS": users})
    assert not mine["ok"], "the user's own value wins, and apply says the flags are not ours"
    others = [f"{k}={v}" for k, v in xla_cpu.CPU_FLAGS.items() if k != "--xla_cpu_experimental_ynn_fusion_type"]
    assert mine["flags"] == " ".join([users, *others])  # the user's value kept, our other flags added
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


@pytest.mark.e2e  # a fresh interpreter: XLA reads its flags once
def test_a_donated_weight_read_by_two_products_is_updated_in_place():
    """A dense layer's step reads its weights in the forward product and in the input's gradient, and writes the
    updated weights into the donated buffer: with the flags XLA does so without copying the weights first."""
    code = ("import json; from jax_impl import xla_cpu; xla_cpu.apply(); import jax, jax.numpy as jnp\n"
            "def step(w, x):\n"
            "    y = x @ w\n"
            "    return w - 0.1 * (x.T @ y), y @ w.T  # the update, and the input's gradient reading w\n"
            "w, x = jnp.ones((512, 256)), jnp.ones((64, 512))\n"
            "text = jax.jit(step, donate_argnums=0).lower(w, x).compile().as_text()\n"
            "copies = [l for l in text.splitlines() if ' copy(' in l and 'f32[512,256]' in l]\n"
            "print(json.dumps({'copies': len(copies)}))")
    assert run_python(code, {"XLA_FLAGS": ""}) == {"copies": 0}  # (jaxlib 0.10 without the flags: one copy)
