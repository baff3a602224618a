"""Implicit derivatives of the solvers' solutions: finite differences, both modes, the stated rules.

Each solver compiles one program (a module fixture) that evaluates, vmapped over a batch of small
random float64 problems, the solution, central finite differences along random directions,
``jax.jacfwd`` and ``jax.jacrev`` with respect to every array argument, and ``jax.grad`` of a
vmapped solve; the tests share it and call it again on constructed data (compiling a solver is
what costs time here, so there are few programs and one shape per solver). Random continuous
data put every solution at a non-degenerate point (a unique vertex, a lasso support with slack),
where the finite differences exist; the docstrings' rules at degenerate points are tested on
constructed problems. A compiled program without a batched LAPACK call cannot hit the jaxlib CPU
deadlock of ``l1jax/_lapack.py``, so ``vmap`` of ``jacrev`` (of ``grad``) and ``grad`` of
``vmap`` are checked for that and then run in this process (``tests/test_no_hang.py`` runs the
hang-prone calls themselves under a timeout).
"""

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_no_hang import batched_lapack_calls

from l1jax import solvers

B = 6  # problems per batch
H = 1e-6  # finite-difference step
ROOT = Path(__file__).resolve().parents[1]


def family(solve, nargs, mode="linearize"):
    """The program for a batch: per problem, ``solve``'s output (``(coef, objective)``), its
    central differences along ``dirs``, and jacfwd and jacrev in its ``nargs`` array arguments.

    Compiling a solver is what costs time here, so each copy of it in the program counts. The
    solution and the differences come from one vmapped call at ``args + s H dirs``, ``s = 0, 1,
    -1``. ``mode="linearize"`` (one copy of the solver): ``jax.linearize`` at each point, then
    ``jax.jacfwd`` and ``jax.jacrev`` of the linear map it returns (the reverse mode is its
    transpose, as in ``jax.vjp``). ``mode="api"`` (two copies): ``vmap(jacfwd(solve))`` and the
    diagonal blocks of ``jacrev(vmap(solve))``, the reverse mode of a vmapped solve.
    """
    argnums = tuple(range(nargs))

    def with_aux(*args):
        out = solve(*args)
        return out, out

    def at(args, dirs, s):
        shifted = [x + s * H * dx for x, dx in zip(args, dirs, strict=True)]
        if mode == "api":
            fwd, out = jax.jacfwd(with_aux, argnums, has_aux=True)(*shifted)
            return out, fwd, None
        out, lin = jax.linearize(solve, *shifted)
        return out, jax.jacfwd(lin, argnums)(*shifted), jax.jacrev(lin, argnums)(*shifted)

    def one(*a):
        args, dirs = a[:nargs], a[nargs:]
        out, fwd, rev = jax.vmap(lambda s: at(args, dirs, s))(jnp.array([0.0, 1.0, -1.0]))
        res = {
            "out": jax.tree.map(lambda o: o[0], out),
            "fd": jax.tree.map(lambda o: (o[1] - o[2]) / (2 * H), out),
            "fwd": jax.tree.map(lambda f: f[0], fwd),
        }
        if rev is not None:
            res["rev"] = jax.tree.map(lambda r: r[0], rev)
        return res

    def program(*a):
        res = jax.vmap(one)(*a)
        if mode == "api":
            jac = jax.jacrev(jax.vmap(solve), argnums)(*a[:nargs])

            def blocks(J, out):  # J[b, ..., b', ...] -> J[b, ..., b, ...]
                return jnp.moveaxis(jnp.diagonal(J, axis1=0, axis2=out.ndim), -1, 0)

            res["rev"] = tuple(
                tuple(blocks(J, out) for J in jo) for jo, out in zip(jac, res["out"], strict=True)
            )
        return res

    return program


def compiled(fn, *args):
    with jax.enable_x64(True):
        args = [jnp.asarray(a) for a in args]
        return jax.jit(fn).lower(*args).compile(), args


def run(prog, *args):
    return jax.device_get(prog(*(jnp.asarray(a) for a in args)))


def contract(jac, dirs):
    """``sum_k J_k . d_k``: the directional derivative from the Jacobians in each argument."""
    return sum(jnp.tensordot(J, d, axes=d.ndim) for J, d in zip(jac, dirs, strict=True))


def check_family(res, dirs, rtol):
    """Central differences against forward mode, forward against reverse (coef, objective)."""
    for k in range(2):
        for a, b in zip(res["fwd"][k], res["rev"][k], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        fwd = jax.vmap(contract)(res["fwd"][k], dirs)
        scale = np.max(np.abs(fwd)) + 1.0
        np.testing.assert_allclose(res["fd"][k], fwd, rtol=rtol, atol=rtol * scale)


# ----------------------------------------------------------------------------------------------
# Quantile regression: two levels per problem (a 1-D tau), the second the median (LAD's fit).


def quantile_data(seed, n=12, d=3):
    rng = np.random.default_rng(seed)
    X = np.concatenate([np.ones((B, n, 1)), rng.standard_normal((B, n, d - 1))], axis=2)
    y = np.einsum("bnd,d->bn", X, [1.0, -2.0, 0.5]) + rng.laplace(size=(B, n))
    tau = np.stack([np.linspace(0.2, 0.8, B), np.full(B, 0.5)], axis=1)
    dirs = (rng.standard_normal(X.shape), rng.standard_normal(y.shape), np.ones(tau.shape))
    return (X, y, tau), dirs


def _quantile(X, y, tau):
    res = solvers.quantile_regression(X, y, tau)
    return res.coef, res.objective


@pytest.fixture(scope="module")
def quantile_run():
    args, dirs = quantile_data(0)
    prog, a = compiled(family(_quantile, 3), *args, *dirs)
    with jax.enable_x64(True):
        return prog, args, a[3:], jax.device_get(prog(*a))


def basis(X, y, coef):
    """The d smallest |residuals|, exact ties to the lower row (rows here do not repeat)."""
    return np.sort(np.argsort(np.abs(y - X @ coef), kind="stable")[: X.shape[1]])


def test_quantile_matches_finite_differences_both_modes(x64, quantile_run):
    _, (X, y, _), dirs, res = quantile_run
    check_family(res, dirs, rtol=1e-6)
    np.testing.assert_array_equal(res["fwd"][0][2], 0.0)  # piecewise constant in tau
    # d objective / d tau = mean residual (the envelope theorem)
    resid = y[:, None, :] - np.einsum("bnd,btd->btn", X, res["out"][0])
    jac_tau = res["rev"][1][2]
    np.testing.assert_allclose(np.diagonal(jac_tau, axis1=1, axis2=2), resid.mean(2), rtol=1e-10)
    assert np.all(jac_tau[:, [0, 1], [1, 0]] == 0)


def test_quantile_derivative_is_the_basis_inverse_and_zero_off_basis(x64, quantile_run):
    _, (X, y, tau), _, res = quantile_run
    jac_X, jac_y = res["rev"][0][0], res["rev"][0][1]
    for i in range(B):
        for t in range(tau.shape[1]):
            coef = res["out"][0][i, t]
            idx = basis(X[i], y[i], coef)
            off = np.setdiff1d(np.arange(X.shape[1]), idx)
            assert np.all(jac_y[i, t][:, off] == 0) and np.all(jac_X[i, t][:, off, :] == 0)
            inv = np.linalg.inv(X[i][idx])
            np.testing.assert_allclose(jac_y[i, t][:, idx], inv, rtol=1e-10, atol=1e-12)
            # d coef / d X_B = -X_B^{-1} (.) coef
            expected = -inv[:, :, None] * coef[None, None, :]
            np.testing.assert_allclose(jac_X[i, t][:, idx, :], expected, rtol=1e-9, atol=1e-12)


def test_quantile_program_has_no_batched_lapack_call(quantile_run):
    assert batched_lapack_calls(quantile_run[0]) == []


def test_quantile_degenerate_vertex_takes_the_first_independent_rows(x64, quantile_run):
    """Three groups (intercept and two indicators): the median fit is the group medians, each
    attained by two identical rows, so 5 residuals are zero and d = 3. The basis is one row per
    group, the lower of each tied pair: rows 1, 6 and 9."""
    prog, _, dirs, _ = quantile_run
    X = np.zeros((12, 3))
    X[:, 0], X[5:8, 1], X[8:, 2] = 1.0, 1.0, 1.0
    y = np.array([0.0, 1.0, 1.0, 2.0, 5.0, 3.0, 4.0, 7.0, -1.0, 0.0, 0.0, 2.0])
    # Perturbations: none; y_1 up; y_2 down; y_1, y_2 up; y_9, y_10 up; y_1 down.
    e = np.eye(12) * 1e-3
    dys = np.stack([0 * e[0], e[1], -e[2], e[1] + e[2], e[9] + e[10], -e[1]])
    res = run(prog, np.broadcast_to(X, (B, 12, 3)), y + dys, np.full((B, 2), 0.5), *dirs)
    coef, jac = res["out"][0][:, 1], res["rev"][0][1][0, 1]
    np.testing.assert_allclose(coef[0], [1.0, 3.0, -1.0], rtol=1e-9)
    expected = np.zeros((3, 12))
    expected[:, [1, 6, 9]] = np.linalg.inv(X[[1, 6, 9]])
    np.testing.assert_allclose(jac, expected, atol=1e-12)
    assert np.all(jac[:, [0, 2, 3, 4, 5, 7, 8, 10, 11]] == 0)
    # The fit is not differentiable there: the rule is exact along the perturbations that keep
    # the basis optimal (y_1 >= y_2 in the first group), not along y_1 down.
    # (The solver leaves this fit uncertified, its vertex polish through the d smallest
    # residuals being singular, but 1e-11 from the optimum.)
    np.testing.assert_allclose(coef[1:5], coef[0] + dys[1:5] @ jac.T, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(coef[5], coef[0], rtol=1e-9, atol=1e-10)
    assert not np.allclose(coef[5], coef[0] + dys[5] @ jac.T, rtol=1e-6)


def test_lad_is_the_median_fit_with_the_objective_doubled(x64, quantile_run):
    """``lad`` on the first problem: its Jacobians are the tau = 0.5 ones, the objective's x2."""
    _, (X, y, _), _, res = quantile_run

    def lad(X, y):
        fit = solvers.lad(X, y)
        return (fit.coef, fit.objective), (fit.coef, fit.objective)

    prog, a = compiled(jax.jacrev(lad, (0, 1), has_aux=True), X[0], y[0])
    with jax.enable_x64(True):
        jac, (coef, _) = jax.device_get(prog(*a))
    np.testing.assert_allclose(coef, res["out"][0][0, 1], rtol=1e-12)
    for k, factor in ((0, 1), (1, 2)):
        for got, median in zip(jac[k], res["fwd"][k][:2], strict=True):
            np.testing.assert_allclose(got, factor * median[0, 1], rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Lasso: two penalties per problem (a 1-D lam).


def lasso_data(seed, n=20, d=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, n, d))
    y = np.einsum("bnd,d->bn", X, [2.0, -1.0, 0.0, 0.5, 0.0]) + 0.5 * rng.standard_normal((B, n))
    lam_max = np.max(np.abs(np.einsum("bnd,bn->bd", X, y)), axis=1) / n
    lam = lam_max[:, None] * np.stack([np.linspace(0.05, 0.5, B), np.full(B, 0.2)], axis=1)
    dirs = (rng.standard_normal(X.shape), rng.standard_normal(y.shape), np.ones(lam.shape))
    return (X, y, lam), dirs, lam_max


def _lasso(X, y, lam):
    res = solvers.lasso(X, y, lam)
    return res.coef, res.objective


def _lasso_programs(X, y, lam, dX, dy, dlam, target):
    res = family(_lasso, 3, mode="api")(X, y, lam, dX, dy, dlam)

    def loss(X, y, lam):
        return 0.5 * jnp.sum((solvers.lasso(X, y, lam).coef - target) ** 2)

    res["grad"] = jax.vmap(jax.grad(loss, (0, 1)))(X, y, lam[:, 0])
    res["hessian"] = jax.hessian(loss, (0, 1))(X[0], y[0], lam[0, 0])
    return res


@pytest.fixture(scope="module")
def lasso_run():
    args, dirs, lam_max = lasso_data(1)
    target = np.linspace(-1.0, 1.0, args[0].shape[2])
    prog, a = compiled(_lasso_programs, *args, *dirs, target)
    with jax.enable_x64(True):
        return prog, args, dirs, target, lam_max, jax.device_get(prog(*a))


def test_lasso_matches_finite_differences_both_modes(x64, lasso_run):
    _, _, dirs, _, _, res = lasso_run
    check_family(res, [jnp.asarray(d) for d in dirs], rtol=1e-5)
    coef = res["out"][0]
    assert 0 < np.sum(coef != 0) < coef.size  # partial supports
    jac_lam = res["rev"][1][2]  # d objective / d lam = ||coef||_1
    np.testing.assert_allclose(np.diagonal(jac_lam, axis1=1, axis2=2), np.abs(coef).sum(2))


def test_lasso_derivative_is_the_support_solve_and_zero_off_support(x64, lasso_run):
    _, (X, y, lam), _, _, _, res = lasso_run
    n = X.shape[1]
    jac_X, jac_y, jac_lam = res["rev"][0]
    for i in range(B):
        for t in range(lam.shape[1]):
            coef = res["out"][0][i, t]
            on = coef != 0
            for jac in (jac_X, jac_y, jac_lam):
                assert np.all(jac[i, t][~on] == 0)
            XS = X[i][:, on]
            inv = np.linalg.inv(XS.T @ XS)
            np.testing.assert_allclose(jac_y[i, t][on], inv @ XS.T, rtol=1e-9, atol=1e-12)
            expected = -n * inv @ np.sign(coef[on])
            np.testing.assert_allclose(jac_lam[i, t][on, t], expected, rtol=1e-9, atol=1e-12)


def test_lasso_hessian_of_a_downstream_loss(x64, lasso_run):
    prog, (X, y, lam), dirs, target, _, res = lasso_run
    (H_XX, H_Xy), (_, H_yy) = res["hessian"]
    # coef is affine in y on a fixed support, so the Hessian of 0.5 ||coef - t||^2 is J^T J.
    J = res["rev"][0][1][0, 0]
    np.testing.assert_allclose(H_yy, J.T @ J, rtol=1e-9, atol=1e-12)
    # In X it is not: the Hessian against central differences of the gradient.
    grads = []
    for s in (1.0, -1.0):
        Xs = X.copy()
        Xs[0] += s * H * dirs[0][0]
        grads.append(run(prog, Xs, y, lam, *dirs, target)["grad"])
    # vmap of jax.grad: the gradient is J^T (coef - t)
    coef = res["out"][0][:, 0]
    expected = np.einsum("bdn,bd->bn", res["rev"][0][1][:, 0], coef - target)
    np.testing.assert_allclose(res["grad"][1], expected, rtol=1e-10, atol=1e-12)
    for k, Hk in enumerate((H_XX, np.moveaxis(H_Xy, (0, 1), (-2, -1)))):
        fd = (grads[0][k][0] - grads[1][k][0]) / (2 * H)
        hvp = np.tensordot(Hk, dirs[0][0], axes=2)
        np.testing.assert_allclose(hvp, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(fd)))


def test_lasso_at_lam_max_takes_the_derivative_from_above(x64, lasso_run):
    """Degenerate: at lam_max one coefficient is on the boundary |X_j^T r| / n = lam, coef = 0,
    and the rule is the one-sided derivative with that coefficient held at zero."""
    prog, (X, y, _), dirs, target, lam_max, _ = lasso_run
    lam = lam_max[:, None] * np.array([1.0, 1 - 1e-3])
    res = run(prog, X, y, lam, *dirs, target)
    at, below = res["out"][0][:, 0], res["out"][0][:, 1]
    assert np.all(at == 0)
    for k in range(3):
        assert np.all(res["rev"][0][k][:, 0] == 0) and np.all(res["fwd"][0][k][:, 0] == 0)
    # Below lam_max the entering coefficient moves at slope n / (X_j^T X_j): a kink.
    n = X.shape[1]
    for i in range(B):
        j = int(np.argmax(np.abs(X[i].T @ y[i])))
        assert np.flatnonzero(below[i]).tolist() == [j]
        slope = abs(below[i, j]) / (lam_max[i] * 1e-3)
        np.testing.assert_allclose(slope, n / (X[i][:, j] @ X[i][:, j]), rtol=1e-8)
        np.testing.assert_allclose(abs(res["rev"][0][2][i, 1, j, 1]), slope, rtol=1e-8)


def test_lasso_program_has_no_batched_lapack_call(lasso_run):
    assert batched_lapack_calls(lasso_run[0]) == []


# ----------------------------------------------------------------------------------------------
# Basis pursuit


def bp_data(seed, m=4, n=10, sparse=False):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((B, m, n))
    if sparse:  # one non-zero: recovered exactly, a degenerate vertex (|S| = 1 < m)
        x0 = np.zeros((B, n))
        x0[np.arange(B), rng.integers(0, n, B)] = rng.choice([-2.0, 2.0], B)
        b = np.einsum("bmn,bn->bm", A, x0)
    else:
        b = rng.standard_normal((B, m))
    return (A, b), (rng.standard_normal(A.shape), rng.standard_normal(b.shape))


def _bp(A, b):
    res = solvers.basis_pursuit(A, b)
    return res.coef, res.objective


@pytest.fixture(scope="module")
def bp_run():
    args, dirs = bp_data(2)
    prog, a = compiled(family(_bp, 2), *args, *dirs)
    with jax.enable_x64(True):
        return prog, args, a[2:], jax.device_get(prog(*a))


def support(x):
    return np.abs(x) > 1e-6 * np.max(np.abs(x))


def test_basis_pursuit_matches_finite_differences_both_modes(x64, bp_run):
    _, (A, _), dirs, res = bp_run
    check_family(res, dirs, rtol=1e-6)
    jac_A, jac_b = res["rev"][0]
    for i in range(B):
        on = support(res["out"][0][i])
        assert on.sum() == A.shape[1]  # non-degenerate vertices
        assert np.all(jac_b[i][~on] == 0) and np.all(jac_A[i][~on] == 0)
        np.testing.assert_allclose(jac_b[i][on], np.linalg.inv(A[i][:, on]), rtol=1e-9)


def test_basis_pursuit_degenerate_vertex_is_least_squares_on_the_support(x64, bp_run):
    prog = bp_run[0]
    # Seed 6: each of the six 1-sparse signals is recovered (about 3 in 4 are, at m = 4, n = 10).
    (A, b), (dA, _) = bp_data(6, sparse=True)
    res = run(prog, A, b, np.zeros_like(dA), np.zeros_like(b))
    # Perturbations that keep the support: db in the range of A_S.
    w = np.random.default_rng(4).standard_normal(B)
    db = np.stack([A[i][:, support(res["out"][0][i])][:, 0] * w[i] for i in range(B)])
    along = run(prog, A, b, np.zeros_like(dA), db)
    for i in range(B):
        on = support(res["out"][0][i])
        assert on.sum() == 1
        jac_b = along["rev"][0][1][i]
        np.testing.assert_allclose(jac_b[on], np.linalg.pinv(A[i][:, on]), rtol=1e-9)
        assert np.all(jac_b[~on] == 0)
    # Along them the rule is the derivative: central differences agree.
    fwd = np.einsum("bnm,bm->bn", along["fwd"][0][1], db)
    np.testing.assert_allclose(along["fd"][0], fwd, rtol=1e-6, atol=1e-8)


def test_smallest_k_breaks_ties_at_the_kth_value_by_index(x64):
    """The support the basis-pursuit rule (and its polish) takes: an exactly sparse x has ties."""
    from l1jax.solvers._linalg import smallest_k

    rng = np.random.default_rng(5)
    a = np.concatenate([rng.integers(0, 3, (12, 9)), rng.random((4, 9))]).astype(float)
    a[0] = [2.0, 2.0, 2.0, 0.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    got = jax.jit(jax.vmap(lambda a: smallest_k(a, 3)))(jnp.asarray(a))
    np.testing.assert_array_equal(got, np.sort(np.argsort(a, 1, kind="stable")[:, :3], 1))
    np.testing.assert_array_equal(got[0], [0, 1, 3])


def test_basis_pursuit_program_has_no_batched_lapack_call(bp_run):
    assert batched_lapack_calls(bp_run[0]) == []


# ----------------------------------------------------------------------------------------------
# The README section


def test_readme_derivatives_example_runs():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Derivatives through the solvers", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # noqa: S102 - the README is ours
    X, coef = np.asarray(ns["X"], np.float64), np.asarray(ns["fit"].coef, np.float64)
    on = coef != 0
    XS = X[:, on]
    expected = -X.shape[0] * np.linalg.solve(XS.T @ XS, np.sign(coef[on])).sum()
    np.testing.assert_allclose(float(ns["dlam"]), expected, rtol=1e-4)


def test_lasso_at_a_kink_inside_the_path_holds_the_entering_coefficient_at_zero(x64):
    """Degenerate: on an orthogonal design (X^T X = n I) the lasso is soft-thresholding of
    c = X^T y / n, and coefficient j enters at lam = |c_j| while others are already active. Just
    above that kink coef_j = 0 and the derivative in lam is the one from above: 0 for j, -sign(c_k)
    for every active k; just below it j has joined the support with slope -sign(c_j)."""
    rng = np.random.default_rng(7)
    n, d = 40, 4
    q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    X = np.sqrt(n) * q
    y = X @ np.array([3.0, -2.0, 1.0, 0.5]) + 0.1 * rng.standard_normal(n)
    c = X.T @ y / n
    j = int(np.argsort(np.abs(c))[1])  # the second smallest enters mid-path
    for lam, j_active in ((abs(c[j]) * (1 + 1e-9), False), (abs(c[j]) * (1 - 1e-6), True)):
        grad = jax.jacfwd(lambda t: solvers.lasso(X, y, t).coef)(jnp.asarray(lam))
        active = np.abs(c) > lam
        assert active[j] == j_active and 0 < active.sum() < d
        np.testing.assert_allclose(np.asarray(grad), np.where(active, -np.sign(c), 0.0), atol=1e-8)
