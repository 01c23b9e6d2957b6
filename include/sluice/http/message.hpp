#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace sluice::http {

/// An HTTP/1.1 request with the whole body held in memory.
using Request = boost::beast::http::request<boost::beast::http::string_body>;

/// An HTTP/1.1 response with the whole body held in memory.
using Response = boost::beast::http::response<boost::beast::http::string_body>;

using Status = boost::beast::http::status;
using Verb = boost::beast::http::verb;
using Field = boost::beast::http::field;

}  // namespace sluice::http
