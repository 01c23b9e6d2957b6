#pragma once

// Forward declarations of every Bot API type and request struct, for
// headers that only name them.

#include <sluice/telegram/generated/types_fwd.hpp>  // IWYU pragma: export
