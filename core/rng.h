// core/rng.h — the project's seeded random numbers (splitmix64 + Box-Muller). Deterministic
// on every machine for a given seed, so initialisation and data order reproduce exactly.
#ifndef LORALAB_RNG_H
#define LORALAB_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct { uint64_t state; } Rng;

static inline Rng rng_seeded(uint64_t seed) { Rng r = {seed ^ 0x5DEECE66Dull}; return r; }

static inline uint64_t rng_u64(Rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// uniform in [0, 1)
static inline double rng_uniform(Rng *r) { return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

// standard normal
static inline double rng_normal(Rng *r) {
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// Mixes several integers into one seed (per-layer, per-site dropout streams).
static inline uint64_t rng_mix(uint64_t a, uint64_t b) {
    Rng r = {a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull)};
    return rng_u64(&r);
}

#endif
