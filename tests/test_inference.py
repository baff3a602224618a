"""quantile_inference against statsmodels 0.15, Stata 12 (statsmodels' test data) and R's formulas.

Compiling is what costs time here (seconds per program on a shared 2-core CPU): the kernel
estimators compile once per vcov whatever the kernel and bandwidth, the bootstrap tests share one
compiled program (n = 235, d = 2, B = 200, scalar tau) and ``nid`` compiles once.
"""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from l1jax import solvers
from l1jax.solvers import reference as ref
from l1jax.solvers._inference import BANDWIDTHS, KERNELS

sm = pytest.importorskip("statsmodels.api")
QuantReg = pytest.importorskip("statsmodels.regression.quantile_regression").QuantReg
# Stata 12 results kept by statsmodels: statsmodels/regression/tests/results/
# results_quantile_regression.py, used by statsmodels/regression/tests/test_quantile_regression.py.
stata = pytest.importorskip("statsmodels.regression.tests.results.results_quantile_regression")

_ENGEL = sm.datasets.engel.load_pandas().data
X_ENGEL = np.column_stack([np.ones(len(_ENGEL)), _ENGEL["income"].to_numpy()])
Y_ENGEL = _ENGEL["foodexp"].to_numpy()
# 0.01 is below the Hall-Sheather and Chamberlain bandwidths at n = 235: statsmodels gives NaN.
TAUS = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9])
COMBOS = [(v, k, b) for v in ("iid", "robust") for k in KERNELS for b in BANDWIDTHS]
B = 200
KEY = jax.random.key(0)


def all_kernel_estimates(X, y, coef, tau):
    """Two compiled programs (iid, robust): kernel and bandwidth are traced indices inside."""
    return {
        c: solvers.quantile_inference(X, y, coef, tau=tau, vcov=c[0], kernel=c[1], bandwidth=c[2])
        for c in COMBOS
    }


def as_numpy(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def statsmodels_fit(tau, vcov, kernel, bandwidth):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IterationLimitWarning at tau = 0.01
        return QuantReg(Y_ENGEL, X_ENGEL).fit(q=tau, vcov=vcov, kernel=kernel, bandwidth=bandwidth)


@pytest.fixture(scope="module")
def sm_fits():
    return {c: [statsmodels_fit(t, *c) for t in TAUS] for c in COMBOS}


@pytest.fixture(scope="module")
def lp_coef():
    """Exact LP optima (HiGHS) at TAUS: what l1jax's solvers reproduce to ~1e-9."""
    return np.stack([ref.quantile_lp(X_ENGEL, Y_ENGEL, t)[0] for t in TAUS])


@pytest.fixture(scope="module")
def ours_at_sm_coef(sm_fits):
    coef = np.stack([r.params for r in sm_fits[COMBOS[0]]])
    with jax.enable_x64(True):
        return as_numpy(all_kernel_estimates(X_ENGEL, Y_ENGEL, coef, TAUS))


@pytest.fixture(scope="module")
def ours_at_lp_coef(lp_coef):
    with jax.enable_x64(True):
        return as_numpy(all_kernel_estimates(X_ENGEL, Y_ENGEL, lp_coef, TAUS))


@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_matches_statsmodels(sm_fits, ours_at_sm_coef, combo):
    fits, ours = sm_fits[combo], ours_at_sm_coef[combo]
    bse = np.stack([r.bse for r in fits])
    # NaN exactly where statsmodels has NaN (tau +- h outside (0, 1)), and only at tau = 0.01.
    np.testing.assert_array_equal(np.isnan(ours.se), np.isnan(bse))
    assert not np.isnan(bse[1:]).any()
    np.testing.assert_allclose(ours.se, bse, rtol=1e-6)
    np.testing.assert_allclose(ours.t, np.stack([r.tvalues for r in fits]), rtol=1e-6)
    np.testing.assert_allclose(
        ours.p_values, np.stack([r.pvalues for r in fits]), rtol=1e-6, atol=1e-300
    )
    ci = np.stack([r.conf_int() for r in fits])
    np.testing.assert_allclose(ours.ci_lower, ci[..., 0], rtol=1e-6)
    np.testing.assert_allclose(ours.ci_upper, ci[..., 1], rtol=1e-6)
    np.testing.assert_allclose(ours.sparsity, [r.sparsity for r in fits], rtol=1e-6)
    np.testing.assert_allclose(ours.bandwidth, [r.bandwidth for r in fits], rtol=1e-6)
    np.testing.assert_allclose(ours.cov, np.stack([r.cov_params() for r in fits]), rtol=1e-6)
    assert ours.se.shape == (len(TAUS), 2) and np.all(ours.df_resid == 233)


@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_exact_fit_matches_statsmodels(sm_fits, ours_at_lp_coef, combo):
    """From the exact LP optimum instead of statsmodels' IRLS coefficients.

    iid moves by < 1e-6. robust weights residuals by their sign: the d residuals that an exact
    vertex puts at 0 take the (1 - tau) weight, where statsmodels' IRLS leaves them at +-1e-7 with
    either sign; on Engel that moves robust SEs by up to 3% (tau = 0.9), except at the median
    where both weights are 1/4.
    """
    bse = np.stack([r.bse for r in sm_fits[combo]])[1:]
    se = ours_at_lp_coef[combo].se[1:]
    if combo[0] == "iid":
        np.testing.assert_allclose(se, bse, rtol=5e-6)
    else:
        np.testing.assert_allclose(se[TAUS[1:] == 0.5], bse[TAUS[1:] == 0.5], rtol=5e-6)
        np.testing.assert_allclose(se, bse, rtol=0.05)


_STATA_NAMES = {"epa": "epan2", "gau": "gaussian", "biw": "biweight", "cos": "cosine"}
STATA_CASES = [(k, b, 0.5) for k in KERNELS for b in BANDWIDTHS] + [("epa", "hsheather", 0.75)]


@pytest.mark.parametrize("kernel, bandwidth, tau", STATA_CASES)
def test_matches_stata(ours_at_lp_coef, lp_coef, kernel, bandwidth, tau):
    """statsmodels' own checks of QuantReg(vcov="iid") against Stata 12, same tolerances."""
    if tau == 0.75:
        res2 = stata.epanechnikov_hsheather_q75
    else:
        res2 = getattr(stata, f"{_STATA_NAMES.get(kernel, 'parzen')}_{bandwidth}")
    i = int(np.flatnonzero(TAUS == tau)[0])
    ours = ours_at_lp_coef[("iid", kernel, bandwidth)]
    ours = jax.tree_util.tree_map(lambda a: a[i] if np.ndim(a) else a, ours)
    order = [1, 0]  # Stata's table lists income, then the intercept
    np.testing.assert_allclose(lp_coef[i][order], res2.table[:, 0], rtol=1e-3)
    np.testing.assert_allclose(ours.se[order], res2.table[:, 1], rtol=1e-3)
    np.testing.assert_allclose(ours.t[order], res2.table[:, 2], rtol=1e-2)
    pvals_t = scipy.stats.t.sf(np.abs(ours.t), res2.df_r) * 2
    np.testing.assert_allclose(ours.p_values, pvals_t, rtol=1e-9, atol=1e-10)
    ci = np.stack([ours.ci_lower, ours.ci_upper], axis=-1)[order]
    np.testing.assert_allclose(ci, res2.table[:, -2:], rtol=1e-3)
    assert int(ours.df_resid) == res2.df_r == len(Y_ENGEL) - res2.rank
    np.testing.assert_allclose(ours.sparsity, res2.sparsity, rtol=1e-3)
    np.testing.assert_allclose(ours.bandwidth, res2.kbwidth, rtol=1e-3)


def nid_reference(X, y, tau):
    """R's quantreg summary.rq(se="nid") transcribed to NumPy, refits by HiGHS.

    bandwidth.rq(tau, n, hs=TRUE), halved until tau +- h lies in [0, 1];
    f = pmax(0, 2h / (x'(b_hi - b_lo) - eps)), eps = .Machine$double.eps^(1/2);
    fxxinv from backsolve on the R of qr(sqrt(f) * x); cov = tau (1 - tau) fxxinv X'X fxxinv.
    """
    n, p = X.shape
    x0 = scipy.stats.norm.ppf(tau)
    f0 = scipy.stats.norm.pdf(x0)
    h = (
        n ** (-1 / 3)
        * scipy.stats.norm.ppf(0.975) ** (2 / 3)
        * (1.5 * f0**2 / (2 * x0**2 + 1)) ** (1 / 3)
    )
    while tau - h < 0 or tau + h > 1:
        h /= 2
    bhi = ref.quantile_lp(X, y, tau + h)[0]
    blo = ref.quantile_lp(X, y, tau - h)[0]
    dyhat = X @ (bhi - blo)
    f = np.maximum(0, 2 * h / (dyhat - np.finfo(np.float64).eps ** 0.5))
    r = np.linalg.qr(np.sqrt(f)[:, None] * X, mode="r")
    fxxinv = scipy.linalg.solve_triangular(r, np.eye(p))
    fxxinv = fxxinv @ fxxinv.T
    return tau * (1 - tau) * fxxinv @ X.T @ X @ fxxinv


def test_nid_matches_numpy_transcription_of_r(x64, lp_coef):
    for i in range(1, len(TAUS)):  # scalar tau: one compiled program for all five
        ours = solvers.quantile_inference(X_ENGEL, Y_ENGEL, lp_coef[i], tau=TAUS[i], vcov="nid")
        want = nid_reference(X_ENGEL, Y_ENGEL, TAUS[i])
        np.testing.assert_allclose(ours.cov, want, rtol=1e-6)
        np.testing.assert_allclose(ours.se, np.sqrt(np.diag(want)), rtol=1e-6)
        assert bool(ours.refits_converged)


@pytest.fixture(scope="module")
def bootstrap_engel(lp_coef):
    i = int(np.flatnonzero(TAUS == 0.5)[0])
    with jax.enable_x64(True):
        run = as_numpy(
            solvers.quantile_inference(
                X_ENGEL, Y_ENGEL, lp_coef[i], tau=0.5, vcov="bootstrap", num_bootstrap=B, key=KEY
            )
        )
    return lp_coef[i], run


def test_bootstrap_matches_highs_refits_of_the_same_resamples(bootstrap_engel):
    _, run = bootstrap_engel
    # The resamples are drawn as randint(key, (B, n), 0, n, int32) (an implementation detail this
    # test relies on to compare refit by refit).
    n = len(Y_ENGEL)
    idx = np.asarray(jax.random.randint(KEY, (B, n), 0, n, dtype=jnp.int32))
    coefs = np.stack([ref.quantile_lp(X_ENGEL[i], Y_ENGEL[i], 0.5)[0] for i in idx])
    np.testing.assert_allclose(run.cov, np.cov(coefs, rowvar=False), rtol=1e-6)
    np.testing.assert_allclose(run.se, coefs.std(axis=0, ddof=1), rtol=1e-6)
    assert bool(run.refits_converged)


def test_bootstrap_is_deterministic_and_plausible(x64, bootstrap_engel):
    coef, run = bootstrap_engel

    def boot(X, y, c, key):
        return solvers.quantile_inference(
            X, y, c, tau=0.5, vcov="bootstrap", num_bootstrap=B, key=key
        ).se

    again = boot(X_ENGEL, Y_ENGEL, coef, KEY)
    np.testing.assert_array_equal(again, run.se)
    assert not np.allclose(boot(X_ENGEL, Y_ENGEL, coef, jax.random.key(1)), run.se, rtol=1e-3)
    # Engel's spread grows with income: the bootstrap agrees with the heteroskedasticity-robust
    # nid sandwich, and is ~2x statsmodels' "robust", which at the median equals iid.
    nid = solvers.quantile_inference(X_ENGEL, Y_ENGEL, coef, tau=0.5, vcov="nid")
    rob = solvers.quantile_inference(X_ENGEL, Y_ENGEL, coef, tau=0.5, vcov="robust")
    assert np.all((run.se / nid.se > 0.7) & (run.se / nid.se < 1.6))
    assert np.all(run.se / rob.se > 1.5)
    # Homoskedastic data of the same shape (same compiled program): bootstrap ~ robust.
    rng = np.random.default_rng(0)
    Xh = np.column_stack([np.ones(len(Y_ENGEL)), rng.uniform(0, 4, len(Y_ENGEL))])
    yh = Xh @ np.array([1.0, 2.0]) + rng.standard_normal(len(Y_ENGEL))
    ch = ref.quantile_lp(Xh, yh, 0.5)[0]
    ratio = boot(Xh, yh, ch, KEY) / solvers.quantile_inference(Xh, yh, ch, tau=0.5).se
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio


def test_bootstrap_is_one_vmapped_program(x64):
    """B = 3 and B = 200 trace to the same program up to array sizes: one batched solve."""

    def program(b):
        jaxpr = jax.make_jaxpr(
            lambda X, y, c: (
                solvers.quantile_inference(
                    X, y, c, tau=0.5, vcov="bootstrap", num_bootstrap=b, key=KEY
                ).se
            )
        )(X_ENGEL, Y_ENGEL, np.zeros(2))
        return re.sub(r"\s+", "", re.sub(r"\d+", "N", str(jaxpr)))  # sizes, line breaks

    text = program(3)
    assert text == program(B)
    assert "while[" in text  # the solver's loop, batched over the B resamples


JITTED = jax.jit(
    solvers.quantile_inference,
    static_argnames=("vcov", "kernel", "bandwidth", "alpha", "num_bootstrap"),
)


def test_vmap_over_tau_equals_separate_jitted_calls(x64, ours_at_lp_coef, lp_coef):
    together = ours_at_lp_coef[("robust", "epa", "hsheather")]
    for i in range(1, len(TAUS)):
        alone = JITTED(X_ENGEL, Y_ENGEL, lp_coef[i], tau=TAUS[i], vcov="robust")
        for name, a in alone._asdict().items():
            b = getattr(together, name)
            np.testing.assert_allclose(a, b if name in ("df_resid", "alpha") else b[i], rtol=1e-12)


def three_data_sets():
    """Engel-shaped (n = 235, d = 2) heavy-tailed data sets, so the programs are shared."""
    rng = np.random.default_rng(1)
    n = len(Y_ENGEL)
    Xs = np.stack([np.column_stack([np.ones(n), rng.uniform(0, 3, n)]) for _ in range(3)])
    ys = np.einsum("knd,d->kn", Xs, np.array([1.0, -2.0])) + rng.standard_t(3, (3, n))
    return Xs, ys, np.stack([ref.quantile_lp(Xs[k], ys[k], 0.5)[0] for k in range(3)])


def test_vmap_over_data_sets_equals_separate_calls(x64):
    Xs, ys, coefs = three_data_sets()

    def infer(X, y, c):
        return solvers.quantile_inference(X, y, c, tau=0.5)

    batched = jax.jit(jax.vmap(infer))(Xs, ys, coefs)
    assert batched.se.shape == (3, 2) and batched.df_resid.shape == (3,)
    for k in range(3):
        for a, b in zip(infer(Xs[k], ys[k], coefs[k]), batched, strict=True):
            np.testing.assert_allclose(b[k], a, rtol=1e-12)
    text = batched.summary()
    assert text.count("tau = 0.5,") == 3 and f"{batched.se[2, 1]:.6g}" in text


def test_float32_and_solver_result_input(lp_coef):
    i = int(np.flatnonzero(TAUS == 0.5)[0])
    # A SolverResult whatever fields it has; only coef is read.
    fields = {f: jnp.zeros(()) for f in solvers.SolverResult._fields}
    fit = solvers.SolverResult(**fields)._replace(coef=lp_coef[i].astype(np.float32))
    ours = solvers.quantile_inference(X_ENGEL, Y_ENGEL, fit, tau=0.5, vcov="iid")
    assert ours.se.dtype == jnp.float32 and ours.p_values.dtype == jnp.float32
    want = statsmodels_fit(0.5, "iid", "epa", "hsheather").bse
    np.testing.assert_allclose(ours.se, want, rtol=1e-3)


def test_alpha_matches_statsmodels_conf_int(x64, sm_fits):
    fits = sm_fits[("robust", "epa", "hsheather")]
    coef = np.stack([r.params for r in fits])
    ours = solvers.quantile_inference(X_ENGEL, Y_ENGEL, coef, tau=TAUS, alpha=0.2)
    ci = np.stack([r.conf_int(alpha=0.2) for r in fits])
    np.testing.assert_allclose(ours.ci_lower, ci[..., 0], rtol=1e-6)
    np.testing.assert_allclose(ours.ci_upper, ci[..., 1], rtol=1e-6)
    assert "[0.1" in ours.summary() and "0.9]" in ours.summary()


def test_summary_lists_the_numbers(ours_at_sm_coef):
    res = ours_at_sm_coef[("robust", "epa", "hsheather")]
    text = res.summary(xname=["const", "income"])
    for i in range(1, len(TAUS)):
        assert f"tau = {TAUS[i]:g}" in text
        for j in range(2):
            assert f"{res.coef[i, j]:.6g}" in text and f"{res.se[i, j]:.6g}" in text
            assert f"{res.ci_lower[i, j]:.6g}" in text and f"{res.ci_upper[i, j]:.6g}" in text
    assert "P>|t|" in text and "[0.025" in text and "0.975]" in text and "income" in text
    with pytest.raises(ValueError, match="xname needs 2 names"):
        res.summary(xname=["a"])


X2, Y2, C2 = X_ENGEL[:20], Y_ENGEL[:20], np.array([80.0, 0.5])
BAD = [
    (dict(vcov="ker"), r"vcov expected one of \('iid', 'robust', 'nid', 'bootstrap'\), got vcov="),
    (dict(kernel="tri"), r"kernel expected one of .*'par'\), got kernel='tri'"),
    (dict(bandwidth="silverman"), r"bandwidth expected one of .*got bandwidth='silverman'"),
    (dict(alpha=1.5), r"alpha must be a Python float in \(0, 1\).*got alpha=1.5"),
    (dict(alpha=jnp.float32(0.1)), r"alpha must be a Python float"),
    (dict(vcov="bootstrap", key=KEY, num_bootstrap=1), r"num_bootstrap must be an int >= 2"),
    (dict(vcov="bootstrap"), r"vcov='bootstrap' .* needs a PRNG key, got key=None"),
    (dict(tau=1.0), r"tau must lie in \(0.0, 1.0\), got tau="),
    (dict(tau=np.array([0.5, 0.0]), fit=np.zeros((2, 2))), r"tau must lie in \(0.0, 1.0\)"),
    (dict(tau=np.full((2, 2), 0.5)), r"tau must be a scalar or 1-D, got tau.ndim=2"),
    (dict(X=X2[:, 1]), r"X must be 2-D, got X.ndim=1"),
    (dict(y=Y2[:, None]), r"y must be 1-D, got y.ndim=2"),
    (dict(y=Y2[:-1]), r"X and y must have the same number of rows.*\(20, 2\).*\(19,\)"),
    (dict(X=X2[:2], y=Y2[:2]), r"X must have more rows than columns.*\(2, 2\)"),
    (dict(fit=np.zeros(3)), r"fit.coef must have shape \(2,\).*got fit.coef.shape=\(3,\)"),
    (dict(tau=np.array([0.2, 0.8])), r"fit.coef must have shape \(2, 2\).*tau.shape=\(2,\)"),
]


@pytest.mark.parametrize("change, match", BAD)
def test_bad_arguments_raise(change, match):
    args = dict(X=X2, y=Y2, fit=C2, tau=0.5) | change
    X, y, fit = args.pop("X"), args.pop("y"), args.pop("fit")
    with pytest.raises(ValueError, match=match):
        solvers.quantile_inference(X, y, fit, **args)


def test_bad_arguments_raise_under_vmap():
    with pytest.raises(ValueError, match=r"fit.coef must have shape \(2,\)"):
        jax.vmap(lambda X, y: solvers.quantile_inference(X, y, C2[:1], tau=0.5))(
            np.stack([X2, X2]), np.stack([Y2, Y2])
        )
