"""The Collatz long step, base-24 digits with a pad token that is not a digit, and the disjoint tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specml.data.collatz import (
    BASE,
    MAX_N,
    PAD,
    collatz_arrow,
    collatz_table,
    digits_array,
    from_digits,
    kappa,
    kappa_array,
    to_digits,
)


def naive_long_step(n: int) -> int:
    """From the ordinary Collatz map: odd steps (3x+1)/2 while they land on odd numbers, then halve to odd."""
    x = n
    while True:
        x = (3 * x + 1) // 2
        if x % 2 == 0:
            break
    while x % 2 == 0:
        x //= 2
    return x


def test_kappa_of_27_is_31():
    assert kappa(27) == 31


@pytest.mark.parametrize("n, expected", [
    (1, 1),     # 1 + 1 = 2^1 * 1:  3 - 1 = 2 = 2^1 * 1
    (3, 1),     # 4 = 2^2 * 1:      9 - 1 = 8 = 2^3
    (5, 1),     # 6 = 2 * 3:        9 - 1 = 8
    (7, 13),    # 8 = 2^3:          27 - 1 = 26 = 2 * 13
    (9, 7),     # 10 = 2 * 5:       15 - 1 = 14 = 2 * 7
    (11, 13),   # 12 = 2^2 * 3:     27 - 1 = 26
    (15, 5),    # 16 = 2^4:         81 - 1 = 80 = 2^4 * 5
    (27, 31),   # 28 = 2^2 * 7:     63 - 1 = 62 = 2 * 31
    (31, 121),  # 32 = 2^5:         243 - 1 = 242 = 2 * 121
    (2**20 - 1, (3**20 - 1) // 16),  # 3^20 - 1 = 2^4 * 217,924,200
])
def test_kappa_by_the_formula(n, expected):
    assert kappa(n) == expected


def test_kappa_agrees_with_the_ordinary_collatz_map():
    for n in range(1, 20_001, 2):
        assert kappa(n) == naive_long_step(n), n


def test_kappa_is_odd_and_exact_for_huge_n():
    n = 2**200 - 1  # k = 200, m = 1
    x = 3**200 - 1
    while x % 2 == 0:
        x //= 2
    assert kappa(n) == x and kappa(n) % 2 == 1


@pytest.mark.parametrize("bad", [0, -1, -27, 2, 28, 10**6])
def test_kappa_refuses_even_and_non_positive(bad):
    with pytest.raises(ValueError, match="odd positive"):
        kappa(bad)


@pytest.mark.parametrize("bad", [27.0, True, "27"])
def test_kappa_refuses_non_integers(bad):
    with pytest.raises(TypeError):
        kappa(bad)


def test_kappa_array_matches_kappa():
    n = np.arange(1, 200_001, 2, dtype=np.int64)
    assert (kappa_array(n) == np.array([kappa(int(x)) for x in n])).all()
    big = np.array([MAX_N - 1, 2**39 - 1, 2**38 * 3 - 1], dtype=np.int64)  # the largest kappa below MAX_N: 3^39
    assert kappa_array(big).tolist() == [kappa(int(x)) for x in big]
    assert kappa(2**39 - 1) == 3**39 - 1 >> ((3**39 - 1) & -(3**39 - 1)).bit_length() - 1
    with pytest.raises(ValueError):
        kappa_array(np.array([4]))
    with pytest.raises(ValueError):
        kappa_array(np.array([MAX_N + 1]))


def test_pad_is_not_a_digit():
    assert PAD == BASE == 24
    for n in range(0, 24**3, 7):
        assert PAD not in to_digits(n)
        assert all(0 <= d < BASE for d in to_digits(n))


@pytest.mark.parametrize("n, lsb", [
    (0, [0]),
    (23, [23]),
    (24, [0, 1]),
    (24 * 24 * 5 + 0 * 24 + 7, [7, 0, 5]),      # an interior zero
    (3 * 24**3 + 5, [5, 0, 0, 3]),                 # two interior zeros
    (24**4, [0, 0, 0, 0, 1]),                      # only the leading digit is not zero
    (10 * 24**5 + 24**2 * 9, [0, 0, 9, 0, 0, 10]),
])
def test_digit_round_trips_with_zeros(n, lsb):
    assert to_digits(n) == lsb
    assert to_digits(n, order="msb") == lsb[::-1]
    assert from_digits(lsb) == n
    assert from_digits(lsb[::-1], order="msb") == n
    assert from_digits(lsb + [PAD] * 3) == n          # right padding is dropped
    assert digits_array(np.array([n])).to_pylist() == [lsb]
    assert digits_array(np.array([n]), order="msb").to_pylist() == [lsb[::-1]]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**40), st.sampled_from(["lsb", "msb"]))
def test_digit_round_trip_property(n, order):
    digits = to_digits(n, order=order)
    assert from_digits(digits, order=order) == n
    assert from_digits(digits + [PAD, PAD], order=order) == n
    assert (digits[-1] if order == "lsb" else digits[0]) != 0 or n == 0  # no leading zero


def test_digits_array_matches_to_digits():
    rng = np.random.default_rng(0)
    n = np.concatenate([rng.integers(0, 2**62, 2000), np.array([0, 1, 23, 24, 575, 576, 2**63 - 1])])
    for order in ("lsb", "msb"):
        assert digits_array(n, order=order).to_pylist() == [to_digits(int(x), order=order) for x in n]


def test_from_digits_refuses_a_pad_inside_and_bad_digits():
    with pytest.raises(ValueError, match="pad token inside"):
        from_digits([7, PAD, 5])
    with pytest.raises(ValueError, match="outside"):
        from_digits([7, 25])
    with pytest.raises(ValueError, match="no digits"):
        from_digits([PAD, PAD])
    with pytest.raises(ValueError):
        to_digits(-1)


def test_tables_are_disjoint_odd_and_correct():
    train, test = collatz_table(3000, 500, seed=3, max_n=24**4)
    assert (train.num_rows, test.num_rows) == (3000, 500)
    assert train.column_names == ["n", "n_digits", "kappa", "kappa_digits"]
    n_train, n_test = train.column("n").to_numpy(), test.column("n").to_numpy()
    assert len(set(n_train)) == 3000 and len(set(n_test)) == 500
    assert not set(n_train) & set(n_test)
    for table in (train, test):
        rows = table.to_pylist()
        for row in rows:
            assert row["n"] % 2 == 1 and 1 <= row["n"] <= 24**4
            assert row["kappa"] == kappa(row["n"])
            assert from_digits(row["n_digits"]) == row["n"]
            assert from_digits(row["kappa_digits"]) == row["kappa"]
            assert PAD not in row["n_digits"] and PAD not in row["kappa_digits"]


def test_overlap_is_impossible_even_when_the_draw_takes_every_integer():
    # [1, 99] holds exactly 50 odd integers: train + test = 50 uses them all, each exactly once
    train, test = collatz_table(40, 10, seed=0, max_n=99)
    both = train.column("n").to_pylist() + test.column("n").to_pylist()
    assert sorted(both) == list(range(1, 100, 2))
    with pytest.raises(ValueError, match="holds 50"):
        collatz_table(41, 10, seed=0, max_n=99)


def test_tables_are_seeded():
    a = collatz_table(200, 50, seed=1)
    b = collatz_table(200, 50, seed=1)
    c = collatz_table(200, 50, seed=2)
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert not a[0].equals(c[0])


def test_min_n_and_bad_arguments():
    train, test = collatz_table(100, 10, seed=0, min_n=1000, max_n=3000)
    assert min(train.column("n").to_pylist() + test.column("n").to_pylist()) >= 1001
    with pytest.raises(ValueError):
        collatz_table(10, 10, max_n=MAX_N + 1)
    with pytest.raises(ValueError):
        collatz_table(0, 10)
    with pytest.raises(ValueError):
        collatz_table(10, 10, order="middle")


def test_list_columns_land_in_duckdb_as_integer_lists(tmp_path):
    from specml.data.workspace import Workspace

    train, test = collatz_table(100, 20, seed=0)
    with Workspace(tmp_path / "ws.duckdb") as ws:
        ws.write_table("collatz_train", train)
        ws.write_table("collatz_test", test)
        assert ws.columns("collatz_train") == {"n": "BIGINT", "n_digits": "INTEGER[]", "kappa": "BIGINT",
                                               "kappa_digits": "INTEGER[]"}
        back = ws.sql("SELECT n, n_digits, kappa_digits FROM collatz_train ORDER BY rowid").to_pylist()
        assert [r["n_digits"] for r in back] == train.column("n_digits").to_pylist()
        overlap = ws.sql("SELECT count(*) AS c FROM collatz_train JOIN collatz_test USING (n)").column("c")[0].as_py()
        assert overlap == 0
        # an interior zero survives the trip: 24*24*5 + 7
        ws.write_table("one", collatz_arrow(np.array([24 * 24 * 5 + 7])))
        assert ws.sql("SELECT n_digits FROM one").column("n_digits").to_pylist() == [[7, 0, 5]]
