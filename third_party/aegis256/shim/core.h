/* mstream: stands in for the libsodium header of this name, so that the vendored files
 * (../) compile unchanged against the system libsodium (README.md). */
#include <sodium/core.h>
