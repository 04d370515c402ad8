/* mstream: stands in for libsodium's private/common.h, with the three macros the vendored
 * AEGIS-256 files (../../) use, defined as libsodium 1.0.22 defines them for GCC and clang. */
#ifndef mstream_aegis256_common_H
#define mstream_aegis256_common_H

#define COMPILER_ASSERT(X) (void) sizeof(char[(X) ? 1 : -1])
#ifndef CRYPTO_ALIGN
#define CRYPTO_ALIGN(x) __attribute__((aligned(x)))
#endif
#define ACQUIRE_FENCE __atomic_thread_fence(__ATOMIC_ACQUIRE)

#endif
