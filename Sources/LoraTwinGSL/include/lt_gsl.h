// LoraTwinGSL: the few GSL calls the project uses, behind a header of our own.
// GSL's gsl_cblas.h clashes with OpenBLAS's cblas.h when both reach one Swift module;
// Swift code imports this header only, never GSL's.
#ifndef LT_GSL_H
#define LT_GSL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An opaque random-number generator (GSL's MT19937, identical streams on every machine).
typedef struct lt_rng lt_rng;

lt_rng *lt_rng_new(uint64_t seed);
void lt_rng_free(lt_rng *rng);
/// Uniform on [0, 1).
double lt_rng_uniform(lt_rng *rng);
/// Uniform on (0, 1).
double lt_rng_uniform_pos(lt_rng *rng);
/// Uniform integer on [0, n).
unsigned long lt_rng_uniform_int(lt_rng *rng, unsigned long n);
double lt_ran_exponential(lt_rng *rng, double mean);
/// Gamma with shape a and scale b (mean a*b).
double lt_ran_gamma(lt_rng *rng, double shape, double scale);
double lt_ran_gaussian(lt_rng *rng, double sigma);
/// Log-normal: exp(N(zeta, sigma^2)).
double lt_ran_lognormal(lt_rng *rng, double zeta, double sigma);
unsigned int lt_ran_poisson(lt_rng *rng, double mean);
/// Shuffles n ints in place (GSL's gsl_ran_shuffle: every order equally likely).
void lt_ran_shuffle_int(lt_rng *rng, int *values, size_t n);

/// A pre-processed discrete distribution over k outcomes (Walker's alias method in GSL).
typedef struct lt_discrete lt_discrete;
lt_discrete *lt_discrete_new(size_t k, const double *weights);
void lt_discrete_free(lt_discrete *d);
size_t lt_discrete_draw(lt_rng *rng, const lt_discrete *d);

/// Chi-square upper tail Q(x; nu), for goodness-of-fit tests.
double lt_chisq_q(double x, double nu);
/// The standard normal quantile: x with P(Z <= x) = p, for p in (0, 1).
double lt_ugaussian_pinv(double p);

/// Interpolation over (x, y) with x strictly increasing. kind: 0 linear, 1 steffen (monotone), 2 cubic.
typedef struct lt_interp lt_interp;
lt_interp *lt_interp_new(int kind, const double *x, const double *y, size_t n);
void lt_interp_free(lt_interp *it);
/// Returns 0 on success; out of range is an error (caller extrapolates with a fitted model).
int lt_interp_eval(const lt_interp *it, double x, double *out);

/// Ordinary least squares: X is n x p row-major. Writes p coefficients to c and p*p covariance.
/// Returns 0 on success.
int lt_multifit_linear(const double *X, const double *y, size_t n, size_t p, double *c,
                       double *cov, double *chisq);

#ifdef __cplusplus
}
#endif
#endif
