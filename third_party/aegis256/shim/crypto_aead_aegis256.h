/* mstream: stands in for the libsodium header of this name, so that the vendored files
 * (../) compile unchanged against the system libsodium (README.md). */
/* Nothing of it is used: the constants stay in mstream's wire/crypto.cpp. */
