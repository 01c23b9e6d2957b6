#pragma once

// sluice::telegram::Update and every type it refers to.

#include <sluice/telegram/generated/types/update.hpp>  // IWYU pragma: export
