"""The Collatz long step as a sequence-to-sequence table (issue 4; the task of seed 002).

For odd ``n``, write ``n = 2^k * m - 1`` with ``m`` odd; then ``3^k * m - 1`` is even, and with ``k'`` its
2-adic valuation the long step is ``kappa(n) = (3^k * m - 1) / 2^k'`` (``kappa(27) = 31``). It folds the
``k`` odd steps ``n -> (3n + 1) / 2`` that a run of ``k`` trailing 1-bits forces, and the halvings after
them, into one step from an odd integer to the next odd integer of the Collatz orbit.

Numbers are written in base 24 (seed 002's base), **least significant digit first**: position ``i`` holds
the coefficient of ``24^i`` in both ``n`` and ``kappa(n)``, so right padding never moves a digit and a
model reading position ``i`` always sees the same place value. ``PAD = 24`` is a token outside the digits
``0..23`` (seed 002's source pads with 0, the digit zero, which makes padded positions count as correct).
``order="msb"`` writes the usual most-significant-first order instead.

:func:`collatz_table` draws the train and test integers in one draw without replacement and splits that
draw, so no integer can be in both tables (seed 002 samples with replacement and then splits the
samples, which puts the same integer on both sides).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pyarrow as pa

BASE = 24
#: the padding token of digit sequences; never a digit (digits are 0..base-1)
PAD = 24
#: the largest n :func:`collatz_table` accepts: kappa(n) < 3**39 < 2**63 stays exact in int64 below it
MAX_N = 10**12

Order = Literal["lsb", "msb"]


def _check_odd(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"kappa needs an integer, got {type(n).__name__}")
    n = int(n)
    if n <= 0 or n % 2 == 0:
        raise ValueError(f"kappa is defined for odd positive integers, got {n}")
    return n


def _valuation2(x: int) -> int:
    """The 2-adic valuation of ``x > 0``: the number of trailing zero bits."""
    return (x & -x).bit_length() - 1


def kappa(n: int) -> int:
    """The Collatz long step of an odd positive integer (exact integer arithmetic)."""
    n = _check_odd(n)
    k = _valuation2(n + 1)
    m = (n + 1) >> k
    x = 3**k * m - 1
    return x >> _valuation2(x)


assert kappa(27) == 31


def kappa_array(n: np.ndarray) -> np.ndarray:
    """:func:`kappa` of every element of an int64 array of odd integers in ``[1, MAX_N]`` (vectorised)."""
    n = np.asarray(n, dtype=np.int64)
    if n.size and (n.min() < 1 or n.max() > MAX_N or not np.all(n & 1)):
        raise ValueError(f"kappa_array needs odd integers from 1 to {MAX_N}")
    plus = n + 1
    k = _log2_of_lowest_bit(plus)
    m = plus >> k
    pow3 = np.array([3**i for i in range(40)], dtype=np.int64)  # k <= 39 below MAX_N < 2**40
    x = pow3[k] * m - 1  # <= 3**39 (m = 1, k = 39) < 2**63
    return x >> _log2_of_lowest_bit(x)


def _log2_of_lowest_bit(x: np.ndarray) -> np.ndarray:
    low = x & -x
    return np.log2(low.astype(np.float64)).round().astype(np.int64)  # exact: low is a power of two <= 2**62


def to_digits(n: int, base: int = BASE, order: Order = "lsb") -> list[int]:
    """The base-``base`` digits of ``n >= 0`` (least significant first unless ``order="msb"``); 0 -> [0]."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"to_digits needs an integer, got {type(n).__name__}")
    n = int(n)
    if n < 0:
        raise ValueError(f"to_digits needs a non-negative integer, got {n}")
    if base < 2:
        raise ValueError(f"base must be at least 2, got {base}")
    digits = []
    while True:
        n, d = divmod(n, base)
        digits.append(d)
        if n == 0:
            break
    return digits if order == "lsb" else digits[::-1]


def from_digits(digits: Sequence[int], base: int = BASE, order: Order = "lsb", pad: int | None = PAD) -> int:
    """The integer whose digits are ``digits``; trailing ``pad`` tokens (right padding) are dropped.

    A pad token between digits, a value outside ``0..base-1`` or no digit at all is a ValueError.
    """
    values = [int(d) for d in digits]
    if pad is not None:
        while values and values[-1] == pad:
            values.pop()
    if not values:
        raise ValueError("from_digits: no digits")
    bad = [d for d in values if not 0 <= d < base]
    if bad:
        what = "a pad token inside the number" if pad is not None and pad in bad else f"digits outside 0..{base - 1}"
        raise ValueError(f"from_digits: {what}: {values}")
    if order == "lsb":
        values = values[::-1]
    n = 0
    for d in values:
        n = n * base + d
    return n


def digits_array(n: np.ndarray, base: int = BASE, order: Order = "lsb") -> pa.ListArray:
    """``to_digits`` of every element of a non-negative int64 array, as an Arrow ``list<int32>`` array."""
    n = np.asarray(n, dtype=np.int64)
    if n.size and n.min() < 0:
        raise ValueError("digits_array needs non-negative integers")
    width = len(to_digits(int(n.max()), base)) if n.size else 1
    digits = np.empty((n.size, width), dtype=np.int32)
    rest = n.copy()
    for i in range(width):
        digits[:, i] = rest % base
        rest //= base
    lengths = np.maximum(1, width - _leading_zero_count(digits))
    mask = np.arange(width)[None, :] < lengths[:, None]
    if order == "msb":
        # reverse each row's used digits: place the used part first, most significant first
        idx = lengths[:, None] - 1 - np.arange(width)[None, :]
        digits = np.take_along_axis(digits, np.clip(idx, 0, width - 1), axis=1)
    values = digits[mask]
    offsets = np.zeros(n.size + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.int32()))


def _leading_zero_count(lsb_digits: np.ndarray) -> np.ndarray:
    """Per row, the number of zero digits at the high end of an LSB-first digit matrix."""
    nonzero = lsb_digits[:, ::-1] != 0
    first = np.argmax(nonzero, axis=1)
    return np.where(nonzero.any(axis=1), first, lsb_digits.shape[1])


def _odd_sample(rng: np.random.Generator, count: int, min_n: int, max_n: int) -> np.ndarray:
    """``count`` distinct odd integers from ``[min_n, max_n]``, in random order."""
    lo = min_n // 2  # odd numbers are 2j + 1: the smallest j with 2j + 1 >= min_n
    hi = (max_n - 1) // 2
    available = hi - lo + 1
    if count > available:
        raise ValueError(f"asked for {count:,} distinct odd integers, but [{min_n}, {max_n}] holds {max(available, 0):,}")
    j = rng.choice(available, size=count, replace=False) + lo
    return 2 * j.astype(np.int64) + 1


def collatz_arrow(n: np.ndarray, base: int = BASE, order: Order = "lsb") -> pa.Table:
    """The table of the integers ``n``: ``n``, ``n_digits INTEGER[]``, ``kappa``, ``kappa_digits INTEGER[]``."""
    n = np.asarray(n, dtype=np.int64)
    k = kappa_array(n)
    return pa.table({
        "n": pa.array(n, pa.int64()),
        "n_digits": digits_array(n, base, order),
        "kappa": pa.array(k, pa.int64()),
        "kappa_digits": digits_array(k, base, order),
    })


def collatz_table(train: int = 20_000, test: int = 2_000, *, seed: int = 0, min_n: int = 1,
                  max_n: int = BASE**5, base: int = BASE, order: Order = "lsb") -> tuple[pa.Table, pa.Table]:
    """Train and test tables of distinct odd integers from ``[min_n, max_n]`` and their long steps.

    One seeded draw without replacement of ``train + test`` integers is split in two, so the tables
    never share an integer. Columns: ``n``, ``n_digits`` (list<int32>), ``kappa``, ``kappa_digits``.
    """
    for name, value in (("train", train), ("test", test), ("seed", seed), ("min_n", min_n), ("max_n", max_n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    if train < 1 or test < 0:
        raise ValueError(f"train must be >= 1 and test >= 0, got train={train}, test={test}")
    if not 1 <= min_n <= max_n <= MAX_N:
        raise ValueError(f"need 1 <= min_n <= max_n <= {MAX_N:,}, got min_n={min_n:,}, max_n={max_n:,}")
    if base < 2 or base > PAD:
        raise ValueError(f"base must be from 2 to {PAD} (the pad token {PAD} is never a digit), got {base}")
    if order not in ("lsb", "msb"):
        raise ValueError(f"order must be 'lsb' or 'msb', got {order!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    rng = np.random.default_rng(seed)
    n = _odd_sample(rng, train + test, min_n, max_n)
    return collatz_arrow(n[:train], base, order), collatz_arrow(n[train:], base, order)


__all__ = ["BASE", "MAX_N", "PAD", "collatz_arrow", "collatz_table", "digits_array", "from_digits", "kappa",
           "kappa_array", "to_digits"]
