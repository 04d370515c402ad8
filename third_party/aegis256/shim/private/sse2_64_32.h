/* mstream: stands in for libsodium's private/sse2_64_32.h, which supplies SSE2 intrinsics
 * missing on 32-bit x86 only; the vendored code is built for x86-64 alone, which has them. */
