// libdeflate (Debian: libdeflate-dev). Used for its CRC-32 only (libdeflate_crc32, which picks a
// carry-less-multiply implementation, PCLMULQDQ or VPCLMULQDQ, at run time).
#include <libdeflate.h>
