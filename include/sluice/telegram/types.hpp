#pragma once

// Every Bot API type (struct definitions and their read_json / write_json
// hooks), generated from spec/botapi.json. Each type also has its own
// header, <sluice/telegram/generated/types/<snake_case_name>.hpp>, which
// pulls in only what that type refers to; <sluice/telegram/update.hpp> is
// the one most code needs.

#include <sluice/telegram/generated/types.hpp>  // IWYU pragma: export
