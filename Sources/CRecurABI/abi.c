/* The C target that exposes include/recur.h (the public API) to the Swift target implementing it,
 * RecurC: its exports are declared `@c @implementation`, so the compiler checks each one against the
 * declaration in the header, and the header's structs, enums and constants are used as they are.
 * This file is empty on purpose: SwiftPM needs one source file per C target. */
#include "recur.h"
