// The one translation unit that compiles Beast's implementation
// (BOOST_BEAST_SEPARATE_COMPILATION is set for every target that links
// sluice::http).
#include <boost/beast/src.hpp>
