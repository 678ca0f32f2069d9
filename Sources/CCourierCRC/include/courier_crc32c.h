#ifndef COURIER_CRC32C_H
#define COURIER_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Non-zero when this CPU has a CRC-32C instruction the functions below use
/// (x86-64: SSE 4.2; 64-bit ARM: the CRC extension).
int courier_crc32c_hardware_available(void);

/// Continues a CRC-32C over `length` bytes at `bytes` using the CPU's instruction. `crc` is
/// the raw register value (not inverted); the caller inverts before and after. Call only
/// when courier_crc32c_hardware_available() returned non-zero.
uint32_t courier_crc32c_hardware(uint32_t crc, const void *bytes, size_t length);

#endif
