// The one translation unit that compiles Asio's SSL implementation.
// sluice::runtime sets BOOST_ASIO_SEPARATE_COMPILATION, so the SSL parts of
// Asio are not compiled inline anywhere else.
#include <boost/asio/ssl/impl/src.hpp>
