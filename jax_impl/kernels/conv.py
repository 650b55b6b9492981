"""Convolution blocks for XLA CPU: ``max_pool(relu(conv(x) + bias))`` with the same maths as the plain layers.

* :func:`conv_relu_pool` with a one-channel input (the CNN's first block):
  the whole block as one elementwise loop over the *pooled* output. A
  one-channel convolution does 9 multiply-adds per output, too little for
  Eigen's convolution kernels, and the plain block wrote its full-resolution
  activation, read it back for pooling and rebuilt it for each gradient. Here
  each pooling offset's convolution is a sum of shifted, strided views of the
  input times a kernel row; one variadic reduction keeps each window's maximum
  and which offset won (the first at ties, as :func:`~jax_impl.kernels.pooling.max_pool`
  and PyTorch choose), and the kernel and bias gradients are one product of
  the input's patches with the routed gradient.
* :func:`conv2d`, every other convolution: gradients written as convolutions
  in the layout Eigen's kernels take (``b01f_01io->b01f``). XLA CPU puts JAX's
  own gradient convolutions there by itself, except inside a loop body, where
  it ran them as plain loops: several steps per compiled call were then far
  slower than one call per step.
* the bias through :func:`jax_impl.kernels.flat.bias_add`: its gradient, a sum over
  ``B * H * W`` rows, as a product with a row of ones (XLA CPU lowered the sum to a
  slow windowed reduction).

Values agree with the plain layers to float32 rounding; gradients too, ties
in pooling decided as PyTorch does. Measurements: docs/performance.md, "CNN blocks".
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from jax_impl.kernels.flat import bias_add
from jax_impl.kernels.pooling import max_pool

_DIMS = ("NHWC", "HWIO", "NHWC")


def _conv(x, kernel, stride: int, padding: int):
    return lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
                                    dimension_numbers=_DIMS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_canonical_grads(x, kernel, stride, padding):
    return _conv(x, kernel, stride, padding)


def _conv_canonical_grads_fwd(x, kernel, stride, padding):
    return _conv(x, kernel, stride, padding), (x, kernel)


def _conv_canonical_grads_bwd(stride, padding, res, g):
    x, kernel = res
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1:3]
    ho, wo = g.shape[1:3]
    # Kernel gradient dk[a, b, i, o] = sum over n, y, z of xpad[n, y*s + a, z*s + b, i] * g[n, y, z, o]:
    # a convolution over (a, b) whose "batch" is Cin and whose contracted "features" are the images.
    x_t = jnp.transpose(x, (3, 1, 2, 0))  # [Cin, H, W, B]
    g_t = jnp.transpose(g, (1, 2, 0, 3))  # [Ho, Wo, B, Cout]
    high = (kh + (ho - 1) * stride - h - padding, kw + (wo - 1) * stride - w - padding)  # may be < 0: crops
    dk = lax.conv_general_dilated(x_t, g_t, (1, 1), ((padding, high[0]), (padding, high[1])),
                                  rhs_dilation=(stride, stride), dimension_numbers=_DIMS)  # [Cin, kh, kw, Cout]
    dk = jnp.transpose(dk, (1, 2, 0, 3))  # [kh, kw, Cin, Cout]
    if stride == 1:
        # Input gradient: g correlated with the flipped kernel, its channels swapped (HWIO with I = Cout).
        flipped = jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2))  # [kh, kw, Cout, Cin]
        dx = lax.conv_general_dilated(g, flipped, (1, 1),
                                      ((kh - 1 - padding, h - ho + padding), (kw - 1 - padding, w - wo + padding)),
                                      dimension_numbers=_DIMS)  # [B, H, W, Cin]
    else:  # a dilated input, which Eigen's kernels do not take anyway: JAX's own rule
        dx = jax.vjp(lambda x: _conv(x, kernel, stride, padding), x)[1](g)[0]
    return dx, dk


_conv_canonical_grads.defvjp(_conv_canonical_grads_fwd, _conv_canonical_grads_bwd)


def smaller_than_kernel(x_shape, kernel_shape) -> bool:
    """Whether an NHWC map is smaller than an HWIO kernel on a side: :func:`conv2d` then takes the product."""
    return x_shape[1] < kernel_shape[0] or x_shape[2] < kernel_shape[1]


def _conv_as_product(x, kernel, stride: int, padding: int):
    """The convolution as one matrix product of the input's patches (im2col) with the kernel's rows; its
    gradients are JAX's for the product and the slices. ``[B, H, W, Cin]`` -> ``[B, Ho, Wo, Cout]``."""
    kh, kw, cin, cout = kernel.shape
    b, h, w, _ = x.shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    patches = jnp.concatenate([xp[:, dy : dy + stride * (ho - 1) + 1 : stride, dx : dx + stride * (wo - 1) + 1 : stride]
                               for dy in range(kh) for dx in range(kw)], axis=-1)  # [B, Ho, Wo, kh*kw*Cin], HWI order
    y = patches.reshape(-1, kh * kw * cin) @ kernel.reshape(kh * kw * cin, cout)  # [B*Ho*Wo, Cout]
    return y.reshape(b, ho, wo, cout)


def conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, stride: int, padding: int, *,
           canonical_grads: bool = True) -> jax.Array:
    """NHWC ``x`` ``[B, H, W, Cin]``, HWIO ``kernel``, symmetric zero ``padding`` -> ``[B, Ho, Wo, Cout]``.

    JAX's values. ``canonical_grads``: gradients as convolutions in Eigen's canonical layout
    (see the module docstring), which pays inside a loop body; otherwise JAX's own, whose layouts
    XLA chooses (faster at a step's top level for VGG16's wide convolutions: its explicit
    transposes cost more than they save there). A map smaller than the kernel (VGG16's last
    block at 32 px: 2 x 2 maps, 3 x 3 kernels), where most of every window is padding, is one
    matrix product of its patches either way: XLA CPU's convolution took some 40 times as
    long there (docs/performance.md, "VGG16 and AlexNet").
    """
    if smaller_than_kernel(x.shape, kernel.shape):
        y = _conv_as_product(x, kernel, stride, padding)
    elif canonical_grads:
        y = _conv_canonical_grads(x, kernel, stride, padding)
    else:
        y = _conv(x, kernel, stride, padding)
    return y if bias is None else bias_add(y, bias)


class Conv(nnx.Conv):
    """``nnx.Conv`` (same parameters, arguments and initialisation) running :func:`conv2d` where it can: a 2-D
    NHWC convolution with one stride and one symmetric zero padding for both sides, no dilation, groups or mask.
    Any other form is Flax's own computation. The layer of VGG16 and AlexNet, whose steps run one per call:
    JAX's own gradients (``canonical_grads=False``), the product for maps smaller than the kernel."""

    def __call__(self, inputs: jax.Array, out_sharding=None) -> jax.Array:
        geometry = self._square_geometry()
        if geometry is None or inputs.ndim != 4 or out_sharding is not None:
            return super().__call__(inputs, out_sharding=out_sharding)
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((inputs, self.kernel[...], bias), dtype=self.dtype)
        return conv2d(x, kernel, bias, *geometry, canonical_grads=False)

    def _square_geometry(self) -> tuple[int, int] | None:
        """``(stride, padding)`` when the layer is the form :func:`conv2d` computes, else None."""
        def pair(v):
            return (v, v) if isinstance(v, int) else tuple(v) if v is not None else (1, 1)

        strides, padding = pair(self.strides), self.padding
        plain = (len(self.kernel_size) == 2 and pair(self.input_dilation) == (1, 1)
                 and pair(self.kernel_dilation) == (1, 1) and self.feature_group_count == 1 and self.mask is None
                 and self.precision is None and self.preferred_element_type is None
                 and self.conv_general_dilated is lax.conv_general_dilated and strides[0] == strides[1])
        if isinstance(padding, int):
            padding = ((padding, padding), (padding, padding))
        if not plain or isinstance(padding, str) or len(padding) != 2:
            return None
        (top, bottom), (left, right) = (pair(side) for side in padding)
        return (strides[0], top) if top == bottom == left == right else None


def _geometry(x_shape, kernel_shape, stride: int, padding: int, window: int):
    """Convolution output size (hc, wc) and pooled size (hp, wp), pooling with floor."""
    kh, kw = kernel_shape[:2]
    hc = (x_shape[1] + 2 * padding - kh) // stride + 1
    wc = (x_shape[2] + 2 * padding - kw) // stride + 1
    return hc, wc, hc // window, wc // window


def _views(xp, kernel_shape, stride: int, window: int, hp: int, wp: int, p: int, q: int):
    """For pooling offset (p, q): the padded input under each kernel tap, ``[B, hp, wp, Cin]`` each, taps row-major.

    Convolution output row ``window * i + p`` reads input row ``(window * i + p) * stride + dy``.
    """
    kh, kw = kernel_shape[:2]
    step = window * stride
    return [xp[:, p * stride + dy : p * stride + dy + step * (hp - 1) + 1 : step,
               q * stride + dx : q * stride + dx + step * (wp - 1) + 1 : step, :]
            for dy in range(kh) for dx in range(kw)]


def _pre_activations(x, kernel, bias, stride, padding, window):
    """Yield, for each pooling offset in row-major order, the convolution plus bias there: [B, hp, wp, Cout]."""
    _, _, hp, wp = _geometry(x.shape, kernel.shape, stride, padding, window)
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    taps = kernel.reshape(-1, kernel.shape[-1])  # [kh*kw (*Cin=1), Cout]
    for p in range(window):
        for q in range(window):
            acc = bias
            for t, view in enumerate(_views(xp, kernel.shape, stride, window, hp, wp, p, q)):
                acc = acc + view * taps[t]  # [B, hp, wp, 1] * [Cout]
            yield acc


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _taps_block(x, kernel, bias, stride, padding, window):
    return jax.nn.relu(functools.reduce(jnp.maximum, _pre_activations(x, kernel, bias, stride, padding, window)))


def _first_max(a, b):
    """Reducer over (value, offset) pairs: the larger value, the earlier offset at a tie (associative)."""
    (va, ia), (vb, ib) = a, b
    take_b = (vb > va) | ((vb == va) & (ib < ia))
    return jnp.where(take_b, vb, va), jnp.where(take_b, ib, ia)


def _taps_block_fwd(x, kernel, bias, stride, padding, window):
    # A reduction, not a chain of where's, on purpose: XLA re-fuses cheap elementwise producers into
    # every consumer and would rebuild the whole convolution inside each; a reduction's result it keeps.
    pre = jnp.stack(list(_pre_activations(x, kernel, bias, stride, padding, window)))  # [w*w, B, hp, wp, Cout]
    offsets = lax.broadcasted_iota(jnp.int8, pre.shape, 0)
    best, winner = lax.reduce((pre, offsets), (jnp.array(-jnp.inf, pre.dtype), jnp.int8(0)), _first_max, (0,))
    y = jax.nn.relu(best)
    return y, (x, kernel, y, winner)


def _taps_block_bwd(stride, padding, window, res, g):
    x, kernel, y, winner = res
    kh, kw, cin, cout = kernel.shape
    hc, wc, hp, wp = _geometry(x.shape, kernel.shape, stride, padding, window)
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    live = y > 0  # ReLU's gradient: zero where the output is 0
    zero = jnp.zeros((), g.dtype)
    routed = jnp.stack([jnp.where((winner == t) & live, g, zero)  # [w*w, B, hp, wp, Cout]
                        for t in range(window * window)])
    patches = jnp.stack([jnp.stack(_views(xp, kernel.shape, stride, window, hp, wp, p, q))  # [taps, B, hp, wp, 1]
                         for p in range(window) for q in range(window)], axis=1)  # [taps, w*w, B, hp, wp, 1]
    patches = patches.reshape(kh * kw, -1)  # [taps, N]: one input channel (the only case routed here)
    patches = jnp.concatenate([patches, jnp.ones((1, patches.shape[1]), patches.dtype)])  # [taps + 1, N]
    grads = patches @ routed.reshape(-1, cout)  # [taps + 1, Cout]: kernel rows, then the bias
    # The input's gradient (unused in training; XLA drops it): the routed gradient put back in place,
    # through the plain convolution's gradient.
    b = x.shape[0]
    full = routed.reshape(window, window, b, hp, wp, cout).transpose(2, 3, 0, 4, 1, 5)  # [B, hp, p, wp, q, Cout]
    full = jnp.pad(full.reshape(b, hp * window, wp * window, cout),
                   ((0, 0), (0, hc - hp * window), (0, wc - wp * window), (0, 0)))  # [B, hc, wc, Cout]
    gx = jax.vjp(lambda x: conv2d(x, kernel, None, stride, padding), x)[1](full)[0]
    return gx, grads[:-1].reshape(kh, kw, cin, cout), grads[-1]


_taps_block.defvjp(_taps_block_fwd, _taps_block_bwd)


def conv_relu_pool(x: jax.Array, kernel: jax.Array, bias: jax.Array | None, *, stride: int = 1, padding: int = 0,
                   window: int = 2) -> jax.Array:
    """``max_pool(relu(conv(x) + bias), window)``: NHWC ``[B, H, W, Cin]``, HWIO kernel -> ``[B, hc//w, wc//w, Cout]``.

    One-channel inputs take the fused loop; others :func:`conv2d`, :func:`bias_add`,
    ReLU and :func:`~jax_impl.kernels.pooling.max_pool`. Same values either way.
    """
    _, _, hp, wp = _geometry(x.shape, kernel.shape, stride, padding, window)
    if bias is None:
        bias = jnp.zeros(kernel.shape[-1], kernel.dtype)
    if kernel.shape[2] == 1 and hp > 0 and wp > 0 and window * window <= 127:  # winning offsets fit int8
        return _taps_block(x, kernel, bias, stride, padding, window)
    return max_pool(jax.nn.relu(conv2d(x, kernel, bias, stride, padding)), window)
