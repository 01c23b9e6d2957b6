#pragma once

// Every Bot API request struct (SendMessage, GetUpdates, ...), generated
// from spec/botapi.json. Each request also has its own header,
// <sluice/telegram/generated/methods/<snake_case_method>.hpp>.
// <sluice/telegram/generated/method_list.hpp> lists them all in
// sluice::telegram::AllMethods.

#include <sluice/telegram/generated/method_list.hpp>  // IWYU pragma: export
#include <sluice/telegram/generated/methods.hpp>      // IWYU pragma: export
