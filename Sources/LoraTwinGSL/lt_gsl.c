#include "lt_gsl.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_interp.h>
#include <gsl/gsl_multifit.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>

struct lt_rng { gsl_rng *r; };
struct lt_discrete { gsl_ran_discrete_t *t; };
struct lt_interp { gsl_interp *it; gsl_interp_accel *acc; double *x; double *y; size_t n; };

lt_rng *lt_rng_new(uint64_t seed) {
    gsl_set_error_handler_off();
    lt_rng *w = malloc(sizeof *w);
    if (!w) return NULL;
    w->r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!w->r) { free(w); return NULL; }
    // MT19937 takes an unsigned long seed; fold the upper bits in so that 64-bit seeds differ.
    gsl_rng_set(w->r, (unsigned long)(seed ^ (seed >> 32)));
    return w;
}
void lt_rng_free(lt_rng *rng) { if (rng) { gsl_rng_free(rng->r); free(rng); } }
double lt_rng_uniform(lt_rng *rng) { return gsl_rng_uniform(rng->r); }
double lt_rng_uniform_pos(lt_rng *rng) { return gsl_rng_uniform_pos(rng->r); }
unsigned long lt_rng_uniform_int(lt_rng *rng, unsigned long n) { return gsl_rng_uniform_int(rng->r, n); }
double lt_ran_exponential(lt_rng *rng, double mean) { return gsl_ran_exponential(rng->r, mean); }
double lt_ran_gamma(lt_rng *rng, double shape, double scale) { return gsl_ran_gamma(rng->r, shape, scale); }
double lt_ran_gaussian(lt_rng *rng, double sigma) { return gsl_ran_gaussian(rng->r, sigma); }
double lt_ran_lognormal(lt_rng *rng, double zeta, double sigma) { return gsl_ran_lognormal(rng->r, zeta, sigma); }
unsigned int lt_ran_poisson(lt_rng *rng, double mean) { return gsl_ran_poisson(rng->r, mean); }
void lt_ran_shuffle_int(lt_rng *rng, int *values, size_t n) { gsl_ran_shuffle(rng->r, values, n, sizeof(int)); }

lt_discrete *lt_discrete_new(size_t k, const double *weights) {
    lt_discrete *d = malloc(sizeof *d);
    if (!d) return NULL;
    d->t = gsl_ran_discrete_preproc(k, weights);
    if (!d->t) { free(d); return NULL; }
    return d;
}
void lt_discrete_free(lt_discrete *d) { if (d) { gsl_ran_discrete_free(d->t); free(d); } }
size_t lt_discrete_draw(lt_rng *rng, const lt_discrete *d) { return gsl_ran_discrete(rng->r, d->t); }

double lt_chisq_q(double x, double nu) { return gsl_cdf_chisq_Q(x, nu); }
double lt_ugaussian_pinv(double p) { return gsl_cdf_ugaussian_Pinv(p); }

lt_interp *lt_interp_new(int kind, const double *x, const double *y, size_t n) {
    const gsl_interp_type *t = kind == 1 ? gsl_interp_steffen : kind == 2 ? gsl_interp_cspline : gsl_interp_linear;
    if (n < gsl_interp_type_min_size(t)) return NULL;
    lt_interp *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->x = malloc(n * sizeof(double));
    w->y = malloc(n * sizeof(double));
    w->n = n;
    for (size_t i = 0; i < n; i++) { w->x[i] = x[i]; w->y[i] = y[i]; }
    w->it = gsl_interp_alloc(t, n);
    w->acc = gsl_interp_accel_alloc();
    if (!w->it || !w->acc || gsl_interp_init(w->it, w->x, w->y, n) != GSL_SUCCESS) {
        lt_interp_free(w);
        return NULL;
    }
    return w;
}
void lt_interp_free(lt_interp *w) {
    if (!w) return;
    if (w->it) gsl_interp_free(w->it);
    if (w->acc) gsl_interp_accel_free(w->acc);
    free(w->x); free(w->y); free(w);
}
int lt_interp_eval(const lt_interp *w, double x, double *out) {
    return gsl_interp_eval_e(w->it, w->x, w->y, x, w->acc, out);
}

int lt_multifit_linear(const double *X, const double *y, size_t n, size_t p, double *c,
                       double *cov, double *chisq) {
    if (n < p || p == 0) return GSL_EINVAL;
    gsl_matrix *mx = gsl_matrix_alloc(n, p);
    gsl_vector *vy = gsl_vector_alloc(n);
    gsl_vector *vc = gsl_vector_alloc(p);
    gsl_matrix *mcov = gsl_matrix_alloc(p, p);
    gsl_multifit_linear_workspace *ws = gsl_multifit_linear_alloc(n, p);
    int rc = GSL_ENOMEM;
    if (mx && vy && vc && mcov && ws) {
        for (size_t i = 0; i < n; i++) {
            gsl_vector_set(vy, i, y[i]);
            for (size_t j = 0; j < p; j++) gsl_matrix_set(mx, i, j, X[i * p + j]);
        }
        rc = gsl_multifit_linear(mx, vy, vc, mcov, chisq, ws);
        for (size_t j = 0; j < p; j++) {
            c[j] = gsl_vector_get(vc, j);
            for (size_t k = 0; k < p; k++) cov[j * p + k] = gsl_matrix_get(mcov, j, k);
        }
    }
    if (ws) gsl_multifit_linear_free(ws);
    if (mcov) gsl_matrix_free(mcov);
    if (vc) gsl_vector_free(vc);
    if (vy) gsl_vector_free(vy);
    if (mx) gsl_matrix_free(mx);
    return rc;
}
