// The one translation unit that compiles Asio's implementation
// (BOOST_ASIO_SEPARATE_COMPILATION is set for every target that links
// sluice::runtime).
#include <boost/asio/impl/src.hpp>
