"""Standard errors, t tests and confidence intervals for quantile regression and LAD fits.

The kernel estimates (``"iid"``, ``"robust"``) reproduce statsmodels' ``QuantReg.fit``
(statsmodels 0.15, ``statsmodels/regression/quantile_regression.py``), ``"nid"`` is the
Hendricks-Koenker sandwich of R's ``quantreg::summary.rq(se="nid")`` and ``"bootstrap"`` refits
resampled rows in one vmapped program. Everything is jit-able and vmaps over ``tau`` and over data
sets; the choices of estimator are static strings checked at trace time.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import scipy.stats
from jax.scipy.special import betainc, ndtri
from jax.scipy.stats import norm
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Real

from l1jax._checks import check_range
from l1jax._lapack import unbatched
from l1jax.solvers import _validate as v
from l1jax.solvers._quantile import quantile_regression
from l1jax.solvers._result import SolverResult

__all__ = [
    "quantile_inference",
    "QuantileInference",
    "VCOV_METHODS",
    "KERNELS",
    "BANDWIDTHS",
]

VCOV_METHODS = ("iid", "robust", "nid", "bootstrap")
KERNELS = ("epa", "gau", "biw", "cos", "par")
BANDWIDTHS = ("hsheather", "bofinger", "chamberlain")
_BANDWIDTH_ALPHA = 0.05  # level in the Hall-Sheather and Chamberlain rules, as statsmodels and R


class QuantileInference(NamedTuple):
    """Inference for one fit; shapes below, with any ``vmap`` axes in front.

    A NamedTuple of arrays, so it passes through ``jit`` and ``vmap``; :meth:`summary` formats it.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import solvers
      >>> X = jnp.stack([jnp.ones(40), jnp.linspace(0.0, 1.0, 40)], axis=1)
      >>> y = X @ jnp.array([1.0, 2.0]) + jnp.sin(jnp.arange(40.0))
      >>> inf = solvers.quantile_inference(X, y, solvers.quantile_regression(X, y, 0.5), tau=0.5)
      >>> coef, se, t, p_values, ci_lower, ci_upper, *_ = inf
      >>> print(bool(jnp.all(ci_lower < coef) & jnp.all(coef < ci_upper)))
      True
    """

    # ``*batch``: the vmap axes, then T for a 1-D tau; ``*vmap``: the vmap axes only.
    coef: Float[Array, "*batch d"]  # estimates, shape (d,), or (T, d) for 1-D tau
    se: Float[Array, "*batch d"]  # standard errors, shaped like coef
    t: Float[Array, "*batch d"]  # coef / se
    p_values: Float[Array, "*batch d"]  # two-sided P(|T| > |t|), T Student t with df_resid dof
    ci_lower: Float[Array, "*batch d"]  # coef - t_{1 - alpha/2, df_resid} se
    ci_upper: Float[Array, "*batch d"]  # coef + t_{1 - alpha/2, df_resid} se
    cov: Float[Array, "*batch d d"]  # covariance matrix of coef, shape (d, d), or (T, d, d)
    tau: Float[Array, "*batch"]  # quantile level(s), shape () or (T,)
    bandwidth: Float[Array, "*batch"]  # kernel bandwidth on the residual scale (statsmodels')
    sparsity: Float[Array, "*batch"]  # kernel estimate of 1 / f(0) (statsmodels'), like tau
    df_resid: Int[Array, "*vmap"]  # n - d, int32
    alpha: Float[Array, "*vmap"]  # the intervals are at level 1 - alpha
    refits_converged: Bool[Array, "*batch"]  # every nid/bootstrap refit certified (else True)

    def summary(self, xname: list[str] | None = None) -> str:
        """The coefficient table per ``tau``: coef, std err, t, P>|t| and the CI bounds.

        Args:
          xname: names of the ``d`` columns of ``X``; default ``x0, x1, ...``.

        Returns:
          One table per quantile level (and per ``vmap`` index), as a string to print.
        """
        coef = np.asarray(self.coef)
        d = coef.shape[-1]
        names = [f"x{j}" for j in range(d)] if xname is None else list(xname)
        if len(names) != d:
            raise ValueError(f"summary: xname needs {d} names, got {len(names)}.")
        batch = coef.shape[:-1]

        def rows(a):
            return np.broadcast_to(np.asarray(a), batch + (d,)).reshape(-1, d)

        def per_table(a):
            return np.broadcast_to(np.asarray(a), batch).reshape(-1)

        cols = [rows(a) for a in (coef, self.se, self.t, self.p_values)]
        lo, hi = rows(self.ci_lower), rows(self.ci_upper)
        taus, alphas, dfs = (per_table(a) for a in (self.tau, self.alpha, self.df_resid))
        bws, spars = per_table(self.bandwidth), per_table(self.sparsity)
        width = max(10, *(len(s) for s in names))
        rule = "=" * (width + 6 * 12)
        tables = []
        for k in range(len(taus)):
            a = float(alphas[k])
            head = (
                f"{'':<{width}}{'coef':>12}{'std err':>12}{'t':>12}{'P>|t|':>12}"
                f"{f'[{a / 2:g}':>12}{f'{1 - a / 2:g}]':>12}"
            )
            lines = [
                f"Quantile regression: tau = {float(taus[k]):g}, df_resid = {int(dfs[k])}, "
                f"bandwidth = {float(bws[k]):.6g}, sparsity = {float(spars[k]):.6g}",
                rule,
                head,
                "-" * (width + 6 * 12),
            ]
            for j, name in enumerate(names):
                c, s, t, p = (col[k, j] for col in cols)
                lines.append(
                    f"{name:<{width}}{c:>12.6g}{s:>12.6g}{t:>12.3f}{p:>12.3f}"
                    f"{lo[k, j]:>12.6g}{hi[k, j]:>12.6g}"
                )
            lines.append(rule)
            tables.append("\n".join(lines))
        return "\n\n".join(tables)


def _epa(u):
    return 0.75 * (1 - u**2) * (jnp.abs(u) <= 1)


def _gau(u):
    return norm.pdf(u)


def _biw(u):
    return 15.0 / 16 * (1 - u**2) ** 2 * (jnp.abs(u) <= 1)


def _cos(u):
    return jnp.where(jnp.abs(u) <= 0.5, 1 + jnp.cos(2 * jnp.pi * u), 0.0)


def _par(u):
    a = jnp.abs(u)
    z = jnp.where(a <= 0.5, 4.0 / 3 - 8.0 * u**2 + 8.0 * a**3, 8.0 * (1 - a) ** 3 / 3.0)
    return jnp.where(a > 1, 0.0, z)


_KERNEL_FNS = (_epa, _gau, _biw, _cos, _par)  # in the order of KERNELS


_Z_BANDWIDTH = float(scipy.stats.norm.ppf(1 - _BANDWIDTH_ALPHA / 2))


def _hall_sheather(n, tau):
    z = ndtri(tau)
    ratio = 1.5 * norm.pdf(z) ** 2 / (2 * z**2 + 1)
    return n ** (-1 / 3) * _Z_BANDWIDTH ** (2 / 3) * ratio ** (1 / 3)


def _bofinger(n, tau):
    # statsmodels evaluates the density at 2 Phi^-1(tau); Koenker (2005, eq. 4.4) has
    # phi(Phi^-1(tau)). The two agree at the median only; statsmodels' rule is kept here.
    z = ndtri(tau)
    ratio = 4.5 * norm.pdf(2 * z) ** 4 / (2 * z**2 + 1) ** 2
    return n ** (-1 / 5) * ratio ** (1 / 5)


def _chamberlain(n, tau):
    return _Z_BANDWIDTH * jnp.sqrt(tau * (1 - tau) / n)


_BANDWIDTH_FNS = (_hall_sheather, _bofinger, _chamberlain)  # in the order of BANDWIDTHS


def _bandwidth_rule(which, n, tau):
    # A traced index into lax.switch: one compiled program serves every kernel and bandwidth.
    return jax.lax.switch(which, [functools.partial(f, n) for f in _BANDWIDTH_FNS], tau)


def _quantiles(a, probs):
    """NumPy's default ("linear") sample quantiles at static ``probs``, from one sort."""
    s = jnp.sort(a)
    n = a.shape[0]
    out = []
    for p in probs:
        pos = p * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        out.append(s[lo] + (pos - lo) * (s[hi] - s[lo]))
    return out


def _kernel_density(X, y, tau, coef, kernel, bandwidth):
    """statsmodels' residual density at 0: ``(residuals, bandwidth h, f0)``.

    ``kernel`` and ``bandwidth`` are int32 indices into :data:`KERNELS` and :data:`BANDWIDTHS`.
    """
    n = X.shape[0]
    e = y - X @ coef
    q25, q75 = _quantiles(e, (0.25, 0.75))
    hq = _bandwidth_rule(bandwidth, n, tau)
    z_hi, z_lo = ndtri(jnp.stack([tau + hq, tau - hq]))
    h = jnp.minimum(jnp.std(y), (q75 - q25) / 1.34) * (z_hi - z_lo)
    f0 = jnp.sum(jax.lax.switch(kernel, _KERNEL_FNS, e / h)) / (n * h)
    return e, h, f0


def _refit(X, y, tau):
    # Interior point to its certified duality gap (1e-10 relative in float64), without the vertex
    # polish: on Engel the refits then agree with HiGHS to 1e-8 and the bootstrap SEs to 1e-9,
    # and the batched solve compiles 3x and runs 4x faster.
    return quantile_regression(X, y, tau, polish=False)


def _nid_cov(X, y, tau, bandwidth):
    """R's ``summary.rq(se="nid")``: ``tau (1 - tau) (X'FX)^-1 X'X (X'FX)^-1``."""
    n, d = X.shape
    h = _bandwidth_rule(bandwidth, n, tau)
    h = jax.lax.while_loop(lambda h: (tau - h < 0) | (tau + h > 1), lambda h: h / 2, h)
    fits = _refit(X, y, jnp.stack([tau + h, tau - h]))
    dyhat = X @ (fits.coef[0] - fits.coef[1])
    eps = jnp.finfo(X.dtype).eps ** 0.5  # R: .Machine$double.eps^(1/2)
    f = jnp.maximum(0.0, 2 * h / (dyhat - eps))
    r = jnp.linalg.qr(jnp.sqrt(f)[:, None] * X, mode="r")
    rinv = jsl.solve_triangular(r, jnp.eye(d, dtype=X.dtype), lower=False)
    fxxinv = rinv @ rinv.T
    return tau * (1 - tau) * fxxinv @ (X.T @ X) @ fxxinv, jnp.all(fits.converged)


def _bootstrap_cov(X, y, tau, idx):
    """Sample covariance (ddof 1, as R's ``cov(B)``) of the refits on the resampled rows."""
    fits = jax.vmap(lambda i: _refit(X[i], y[i], tau))(idx)
    c = fits.coef - jnp.mean(fits.coef, axis=0, keepdims=True)
    return c.T @ c / (idx.shape[0] - 1), jnp.all(fits.converged)


@functools.partial(jax.jit, static_argnames=("vcov", "num_bootstrap"))
def _covariance(X, y, coef, tau, key, kernel, bandwidth, *, vcov, num_bootstrap):
    """``(cov, kernel bandwidth, sparsity, refits converged)``, vmapped over a 1-D ``tau``.

    ``kernel`` and ``bandwidth`` are int32 indices, traced so that changing them recompiles
    nothing.
    """
    n = X.shape[0]
    idx = None
    if vcov == "bootstrap":
        # int32 whatever jax_enable_x64 is, so that a key gives the same resamples in both modes.
        idx = jax.random.randint(key, (num_bootstrap, n), 0, n, dtype=jnp.int32)

    # (X'X)^-1 = R^-1 R^-T from X = QR, as R's summary.rq: forming X'X would square cond(X)
    # (5.7e6 for Engel), more than float32 resolves.
    q, r = jnp.linalg.qr(X)
    rinv = jsl.solve_triangular(r, jnp.eye(X.shape[1], dtype=X.dtype), lower=False)

    def one(t, b):
        e, h, f0 = _kernel_density(X, y, t, b, kernel, bandwidth)
        converged = jnp.array(True)
        if vcov == "iid":
            cov = (1 / f0) ** 2 * t * (1 - t) * (rinv @ rinv.T)
        elif vcov == "robust":
            w = jnp.where(e > 0, (t / f0) ** 2, ((1 - t) / f0) ** 2)
            cov = rinv @ ((q * w[:, None]).T @ q) @ rinv.T
        elif vcov == "nid":
            cov, converged = _nid_cov(X, y, t, bandwidth)
        else:
            cov, converged = _bootstrap_cov(X, y, t, idx)
        return cov, h, 1 / f0, converged

    # unbatched: no batched LAPACK call on the CPU (they can deadlock, see l1jax._lapack).
    return jax.vmap(unbatched(one))(tau, coef) if tau.ndim == 1 else one(tau, coef)


@functools.partial(jax.jit, static_argnames=("df", "alpha"))
def _t_tests(coef, cov, *, df, alpha):
    """``(se, t, two-sided p, ci_lower, ci_upper)`` from Student's t with ``df`` degrees of freedom.

    Separate from :func:`_covariance` so that its (costly to compile) ``betainc`` is compiled once
    per shape, whatever the estimator.
    """
    se = jnp.sqrt(jnp.diagonal(cov, axis1=-2, axis2=-1))
    t = coef / se
    dft = jnp.asarray(df, coef.dtype)
    p = betainc(dft / 2, jnp.asarray(0.5, coef.dtype), dft / (dft + t**2))
    # df and alpha are static, so the t quantile is a trace-time constant (SciPy: a jax dependency).
    half = float(scipy.stats.t.ppf(1 - alpha / 2, df)) * se
    return se, t, p, coef - half, coef + half


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"quantile_inference: {name} expected one of {choices}, got {name}={value!r}."
        )


def quantile_inference(
    X: Real[ArrayLike, "n d"],
    y: Real[ArrayLike, " n"],
    fit: SolverResult | Real[ArrayLike, "*t d"],
    *,
    tau: Real[ArrayLike, "*t"],
    vcov: Literal["iid", "robust", "nid", "bootstrap"] = "robust",
    kernel: Literal["epa", "gau", "biw", "cos", "par"] = "epa",
    bandwidth: Literal["hsheather", "bofinger", "chamberlain"] = "hsheather",
    alpha: float = 0.05,
    num_bootstrap: int = 200,
    key: jax.Array | None = None,
) -> QuantileInference:
    """Standard errors, t statistics, p values and confidence intervals of a quantile regression.

    ``fit`` is the :class:`SolverResult` of :func:`quantile_regression` (or :func:`lad`, with
    ``tau=0.5``) on the same ``X, y``; only ``fit.coef`` is used, so a coefficient array works
    too. With ``e = y - X b`` the residuals at ``b = fit.coef``, the covariance estimators are:

    * ``"iid"``: ``s^2 tau (1 - tau) (X'X)^-1`` with the sparsity ``s = 1 / f0`` estimated by the
      kernel density of ``e`` at 0, ``f0 = sum_i K(e_i / h) / (n h)`` (statsmodels' and Stata 12's
      ``vce(iid)``; not R's ``se="iid"``, which uses a difference quotient of residual quantiles).
    * ``"robust"`` (default, as statsmodels): ``(X'X)^-1 X'WX (X'X)^-1`` with
      ``w_i = (tau / f0)^2`` for ``e_i > 0`` and ``((1 - tau) / f0)^2`` otherwise; statsmodels'
      ``vcov="robust"`` (its docstring: Greene 2008). It weights by the sign of each residual and
      one density ``f0``, not by a density per observation as Powell's kernel sandwich does, and
      equals ``"iid"`` at the median. A zero residual takes the ``(1 - tau)`` weight, so the
      ``d`` residuals an exact LP vertex puts at 0 are weighted differently from statsmodels'
      IRLS fit, which leaves them at about ``+-1e-7``: on Engel the SEs from the two fits differ
      by up to 3% (tau = 0.9).
    * ``"nid"``: Hendricks and Koenker (1992), R's ``quantreg::summary.rq(se="nid")``: refits at
      ``tau +- h`` (``h`` halved until both lie in ``[0, 1]``), ``f_i = max(0, 2h / (x_i'(b_+ -
      b_-) - sqrt(eps)))`` and ``tau (1 - tau) (X'FX)^-1 X'X (X'FX)^-1``. Checked against a NumPy
      transcription of R's formula with HiGHS refits (``tests/test_inference.py``), not against R
      output. ``bandwidth="hsheather"`` is R's default ``hs=TRUE``; ``"bofinger"`` is
      statsmodels' rule below, which is not R's ``hs=FALSE`` away from the median.
    * ``"bootstrap"``: the xy-pairs bootstrap: ``num_bootstrap`` resamples of the rows with
      replacement, each refitted with :func:`quantile_regression`, all in one vmapped program;
      ``cov`` is the sample covariance (ddof 1, as R's ``cov(B)``) of the refits. The same
      resamples serve every ``tau``. On the Engel data (n = 235, d = 2, B = 1000, 2-core CPU
      VM at load average 5.0 / 5.6 / 5.2) it took 0.39 s once compiled (11 s with the compile),
      a loop of 1000 statsmodels ``QuantReg`` fits 18.5 s
      (``scripts/bench_quantile_inference.py``, ``docs/results/quantile_inference.md``).

    The refits of ``"nid"`` and ``"bootstrap"`` run the interior point to its certified duality
    gap without the vertex polish (``polish=False``: on Engel the coefficients agree with HiGHS to
    1e-8, and the batched solve compiles 3x and runs 4x faster); ``refits_converged`` says
    whether every refit was certified.

    The kernel bandwidth is statsmodels' (after Stata 12): ``h = min(std(y), IQR(e) / 1.34)
    (Phi^-1(tau + h_q) - Phi^-1(tau - h_q))`` with ``h_q`` from ``bandwidth``:
    ``"hsheather"`` (Hall and Sheather 1988), ``"bofinger"`` (Bofinger 1975, statsmodels'
    variant: the density evaluated at ``2 Phi^-1(tau)``) or ``"chamberlain"`` (Chamberlain 1994),
    each at level 0.05 whatever ``alpha`` is. ``kernel`` is one of statsmodels' ``"epa"``
    (Epanechnikov), ``"gau"``, ``"biw"`` (biweight), ``"cos"``, ``"par"`` (Parzen). Where
    ``tau +- h_q`` leaves ``(0, 1)`` the result is NaN, as in statsmodels. ``bandwidth`` and
    ``sparsity`` are reported for every ``vcov``; only ``"iid"`` and ``"robust"`` use them.

    Tests and intervals follow statsmodels and R: ``t = coef / se``, two-sided p values and
    ``coef +- t_{1 - alpha/2} se`` from Student's t with ``df_resid = n - d`` degrees of freedom.
    ``X`` is assumed to have full column rank (statsmodels uses ``n - rank(X)``).

    Under ``jit`` pass ``vcov``, ``kernel``, ``bandwidth``, ``alpha`` and ``num_bootstrap`` as
    static arguments; ``X``, ``y``, ``fit``, ``tau`` and ``key`` may be traced and batched.

    Args:
      X: design, shape ``(n, d)`` with ``n > d`` (append a column of ones for an intercept).
      y: responses, shape ``(n,)``.
      fit: :class:`SolverResult` with ``coef`` of shape ``(d,)`` for scalar ``tau`` or
        ``(T, d)`` for 1-D ``tau``, or that coefficient array.
      tau: quantile level(s) in ``(0, 1)`` of the fit, a scalar or a 1-D array of length ``T``.
      vcov: ``"iid"``, ``"robust"``, ``"nid"`` or ``"bootstrap"``.
      kernel: ``"epa"``, ``"gau"``, ``"biw"``, ``"cos"`` or ``"par"``.
      bandwidth: ``"hsheather"``, ``"bofinger"`` or ``"chamberlain"``.
      alpha: the confidence intervals have level ``1 - alpha``; a Python float in ``(0, 1)``.
      num_bootstrap: resamples for ``vcov="bootstrap"`` (default 200, R's ``boot.rq``).
      key: PRNG key, required for ``vcov="bootstrap"``.

    Returns:
      :class:`QuantileInference`; ``coef``, ``se``, ``t``, ``p_values``, ``ci_lower`` and
      ``ci_upper`` shaped like ``fit.coef``, ``cov`` of shape ``(d, d)`` (``(T, d, d)``).

    Raises:
      ValueError: unknown ``vcov``, ``kernel`` or ``bandwidth``; ``alpha`` not a float in
        ``(0, 1)``; ``num_bootstrap < 2``; no ``key`` for the bootstrap; wrong ndim or
        mismatched shapes of ``X``, ``y``, ``fit.coef``; ``n <= d``; a concrete ``tau`` outside
        ``(0, 1)``.

    References:
      - Koenker, R. (2005). Quantile Regression. Cambridge University Press, sec. 3.4.
      - Greene, W. H. (2008). Econometric Analysis, 6th ed., pp. 407-408.
      - Hendricks, W. and Koenker, R. (1992). Hierarchical spline models for conditional
        quantiles and the demand for electricity. JASA 87(417).
      - Hall, P. and Sheather, S. (1988). On the distribution of a studentized quantile. JRSS B 50.
      - Bofinger, E. (1975). Estimation of a density function using order statistics. Austral. J.
        Statist. 17.
      - Chamberlain, G. (1994). Quantile regression, censoring, and the structure of wages.
      - Buchinsky, M. (1995). Estimating the asymptotic covariance matrix for quantile regression
        models: a Monte Carlo study. J. Econometrics 68.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import solvers
      >>> x = jax.random.uniform(jax.random.key(0), (200,))
      >>> X = jnp.stack([jnp.ones(200), x], axis=1)
      >>> y = 1.0 + 2.0 * x + jax.random.normal(jax.random.key(1), (200,))
      >>> fit = solvers.quantile_regression(X, y, 0.5)
      >>> inf = solvers.quantile_inference(X, y, fit, tau=0.5)  # robust (Huber sandwich) by default
      >>> print(inf.se.shape, bool(inf.ci_lower[1] < 2.0 < inf.ci_upper[1]))
      (2,) True
    """
    fn = "quantile_inference"
    _check_choice("vcov", vcov, VCOV_METHODS)
    _check_choice("kernel", kernel, KERNELS)
    _check_choice("bandwidth", bandwidth, BANDWIDTHS)
    if (
        not isinstance(alpha, float | int | np.floating)
        or isinstance(alpha, bool)
        or not 0 < alpha < 1
    ):
        raise ValueError(
            f"{fn}: alpha must be a Python float in (0, 1) (static under jit), got alpha={alpha!r}."
        )
    if vcov == "bootstrap":
        if not isinstance(num_bootstrap, int | np.integer) or num_bootstrap < 2:
            raise ValueError(
                f"{fn}: num_bootstrap must be an int >= 2, got num_bootstrap={num_bootstrap!r}."
            )
        if key is None:
            raise ValueError(
                f"{fn}: vcov='bootstrap' resamples rows and needs a PRNG key, got key=None "
                "(pass key=jax.random.key(0))."
            )
    coef = fit.coef if hasattr(fit, "coef") else fit
    X, y, coef = v.float_arrays(fn, X=X, y=y, coef=coef)
    v.check_ndim(fn, "X", X, 2)
    v.check_ndim(fn, "y", y, 1)
    v.check_rows(fn, "X", X, "y", y)
    n, d = X.shape
    if n <= d:
        raise ValueError(
            f"{fn}: X must have more rows than columns (df_resid = n - d > 0), "
            f"got X.shape={(n, d)}."
        )
    tau = jnp.asarray(tau)
    if tau.ndim > 1:
        raise ValueError(f"{fn}: tau must be a scalar or 1-D, got tau.ndim={tau.ndim}.")
    check_range("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True, fn=fn)
    want = tau.shape + (d,)
    if coef.shape != want:
        raise ValueError(
            f"{fn}: fit.coef must have shape {want} for X.shape={(n, d)} and "
            f"tau.shape={tau.shape}, got fit.coef.shape={tuple(coef.shape)}."
        )
    cov, h, sparsity, converged = _covariance(
        X,
        y,
        coef,
        tau.astype(X.dtype),
        key if vcov == "bootstrap" else None,
        jnp.int32(KERNELS.index(kernel)),
        jnp.int32(BANDWIDTHS.index(bandwidth)),
        vcov=vcov,
        num_bootstrap=int(num_bootstrap) if vcov == "bootstrap" else 0,
    )
    se, t, p, lo, hi = _t_tests(coef, cov, df=n - d, alpha=float(alpha))
    return QuantileInference(
        coef=coef,
        se=se,
        t=t,
        p_values=p,
        ci_lower=lo,
        ci_upper=hi,
        cov=cov,
        tau=tau.astype(X.dtype),
        bandwidth=h,
        sparsity=sparsity,
        df_resid=jnp.asarray(n - d, jnp.int32),
        alpha=jnp.asarray(alpha, X.dtype),
        refits_converged=converged,
    )
