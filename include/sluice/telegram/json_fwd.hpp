#pragma once

// Declarations that the generated type headers need for their read_json and
// write_json overloads, without the cost of the Boost.JSON headers. The
// definitions are in <sluice/telegram/json.hpp>.

#include <boost/json/fwd.hpp>

namespace sluice::telegram {

class ParseError;

namespace detail {
class ReadContext;
class WriteContext;
}  // namespace detail

}  // namespace sluice::telegram
